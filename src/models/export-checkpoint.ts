/** Exporting the chosen checkpoint of a run as a complete folder (weights, config, tokenizer, model card). */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { LATEST, readCheckpoint } from "../train/checkpoint.js";
import type { SaveOptions, Task } from "../worker/model-handle.js";
import type { Worker } from "../worker/worker.js";

export interface ExportCheckpointOptions extends SaveOptions {
  /** The head to load the student with (default: the one its config names). */
  task?: Task;
}

/**
 * Loads the student of `checkpoint` (a gs{step} folder, or a run folder, whose `latest` link is then followed) in
 * `worker` and saves it into `dir` with `save(dir, options)`. A card without a recipe gets the checkpoint's: its step
 * and the configs recorded in trainer_state.json. Returns the files written.
 */
export async function exportCheckpoint(
  worker: Worker,
  checkpoint: string,
  dir: string,
  options: ExportCheckpointOptions = {},
): Promise<string[]> {
  const isRun = existsSync(join(checkpoint, LATEST));
  const { dir: folder, state } = isRun ? readCheckpoint(checkpoint, LATEST) : readCheckpoint(checkpoint, checkpoint);
  const { task, ...save } = options;
  const card =
    typeof save.card === "object" && save.card.recipe === undefined
      ? { ...save.card, recipe: { globalStep: state.globalStep, mode: state.mode, ...state.configs } }
      : save.card;
  const model = await worker.loadModel({ path: folder, ...(task ? { task } : {}), warnNewWeights: false });
  try {
    return await model.save(dir, { ...save, ...(card !== undefined ? { card } : {}) });
  } finally {
    await model.dispose();
  }
}
