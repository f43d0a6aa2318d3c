/** Preparing models in the worker before training: seeding what is created next, freezing parameters by name. */
import type { ModelHandle } from "../worker/model-handle.js";
import type { Worker } from "../worker/worker.js";

/**
 * Seeds the worker's random generators (Python, numpy, torch), so that weights created next are reproducible: the new
 * head that loadModel adds for another number of labels, or a model from createModel without initFrom. (train()
 * seeds again from TrainingConfig.seed when it starts.)
 */
export async function seedWorker(worker: Worker, seed: number): Promise<void> {
  await worker.call("seed", { seed });
}

export interface TrainableReport {
  /** Names of the parameters the pattern matched. */
  matched: string[];
  /** Parameter elements that still train, and all of them. */
  trainableParameters: number;
  parameters: number;
}

/**
 * Sets requires_grad on every parameter whose name matches `pattern` (a Python regex, searched). Frozen parameters get
 * no gradient and no optimizer state: freezing the word embeddings of a small BERT (most of its parameters) roughly
 * halves a training step on CPU. Call it before `train()`; a pattern that matches nothing is an error.
 */
export async function setTrainable(model: ModelHandle, pattern: string, trainable: boolean): Promise<TrainableReport> {
  return (await model.worker.call("set_trainable", { model: model.id, pattern, trainable })) as TrainableReport;
}
