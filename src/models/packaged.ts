/**
 * Pretrained models shipped inside Python distributions: the worker finds the Hugging Face folder through the
 * distribution's installed file list (never importing the package's code) and checks its config and weight shapes.
 */
import type { z } from "zod";
import type { Extra } from "../env/extras.js";
import { addExtras } from "../env/python-env.js";
import type { packagedModel } from "../worker/ops/packaged.js";
import type { Worker } from "../worker/worker.js";

export interface PackagedModelSpec {
  /** The distribution's name, as pip knows it. */
  distribution: string;
  /** The folder inside the distribution that holds config.json, e.g. "pkg/model". */
  subdir: string;
  /** Config keys the folder must have (checked with the weight shapes before anything loads). */
  expect?: Record<string, unknown>;
  /** The managed environment's extra that installs the distribution, added before the model is looked up. */
  extra?: Extra;
}

/** A packaged model's folder, as the worker found and checked it. */
export type PackagedModel = z.output<typeof packagedModel>;

/** Finds and checks a packaged model folder in the worker's Python environment; rejects with a clear WorkerError. */
export async function findPackagedModel(worker: Worker, spec: PackagedModelSpec): Promise<PackagedModel> {
  if (spec.extra) await addExtras([spec.extra]);
  return worker.call("find_packaged_model", { distribution: spec.distribution, subdir: spec.subdir, expect: spec.expect });
}
