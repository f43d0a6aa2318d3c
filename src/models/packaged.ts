/**
 * Pretrained models shipped inside Python distributions: the worker finds the Hugging Face folder through the
 * distribution's installed file list (never importing the package's code) and checks its config and weight shapes.
 */
import type { Worker } from "../worker/worker.js";

export interface PackagedModelSpec {
  /** The distribution's name, as pip knows it. */
  distribution: string;
  /** The folder inside the distribution that holds config.json, e.g. "pkg/model". */
  subdir: string;
  /** Config keys the folder must have (checked with the weight shapes before anything loads). */
  expect?: Record<string, unknown>;
}

export interface PackagedModel {
  /** Absolute path of the folder (config.json, weights, tokenizer files). */
  path: string;
  distribution: string;
  version: string;
  files: string[];
  config: {
    model_type: string;
    num_hidden_layers: number;
    hidden_size: number;
    num_attention_heads?: number;
    intermediate_size?: number;
    vocab_size?: number;
    max_position_embeddings?: number;
    weights: string;
    checkedTensors: number;
  };
}

/** Finds and checks a packaged model folder in the worker's Python environment; rejects with a clear WorkerError. */
export async function findPackagedModel(worker: Worker, spec: PackagedModelSpec): Promise<PackagedModel> {
  return (await worker.call("find_packaged_model", {
    distribution: spec.distribution,
    subdir: spec.subdir,
    expect: spec.expect ?? {},
  })) as PackagedModel;
}
