/** Keeping an example's run folder small once the best checkpoint is chosen, and measuring what is left. */
import { lstatSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * For runs that never resume: every checkpoint in `dir` loses its optimizer, scheduler and RNG states, and all but
 * `keep` lose their weights too; config, trainer_state.json and eval.json stay for the report. The `latest` link goes,
 * as nothing is left to resume from.
 */
export function pruneCheckpoints(dir: string, keep: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === "latest") rmSync(path, { force: true });
    if (!/^gs\d+$/.test(name)) continue;
    const kept = resolve(path) === resolve(keep);
    for (const f of readdirSync(path)) {
      const state = ["optimizer.pt", "scheduler.pt", "rng_state.pt"].includes(f);
      // the student's folder (model/), or its weights at the top in checkpoints of the earlier layout
      const weights = f === "model" || f.endsWith(".safetensors") || f.endsWith(".pt") || f.endsWith(".bin");
      if (state || (!kept && weights)) rmSync(join(path, f), { recursive: true, force: true });
    }
  }
}

/** Bytes of the files under `dir` (links not followed). */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += folderBytes(path);
    else if (entry.isFile()) total += lstatSync(path).size;
  }
  return total;
}
