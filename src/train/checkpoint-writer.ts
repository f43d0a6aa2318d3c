/**
 * Writing checkpoints: the worker fills a temporary folder, trainer_state.json completes it, a rename puts it in
 * place and `latest` moves last. A failed write removes its temporary folder and leaves `latest` alone; temporary
 * folders left by a killed run are removed when a run starts in the same output folder.
 */
import { existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { WorkerError } from "../worker/errors.js";
import type { WorkerLink } from "../worker/worker-link.js";
import { commitCheckpoint, LATEST, type TrainerState, tempCheckpointDir } from "./checkpoint.js";
import { CheckpointWriteError } from "./errors.js";

/** `.gs12.tmp-4242-1712345678901` (a checkpoint being written) and `.latest.tmp-4242` (the link being moved). */
const TEMP_NAME = new RegExp(`^\\.(?:gs\\d+|${LATEST})\\.tmp-(\\d+)(?:-\\d+)?$`);

function isRunning(pid: number): boolean {
  if (pid === process.pid) return false; // this process starts a run: nothing of its own is being written
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** `gs12.old-4242`: the previous gs12, moved aside while a new gs12 took its place. */
const OLD_NAME = /^(gs\d+)\.old-(\d+)$/;

/**
 * Removes the temporary checkpoint folders of runs that are gone; returns their names. A `gs{N}.old-{pid}` folder
 * whose run died between its two renames is the only complete gs{N}, and `latest` may name gs{N}: it is moved back.
 */
export function removeStaleTemps(outputDir: string): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(outputDir)) {
    const temp = TEMP_NAME.exec(name);
    const old = OLD_NAME.exec(name);
    const pid = temp?.[1] ?? old?.[2];
    if (pid === undefined || isRunning(Number(pid))) continue;
    if (old && !existsSync(join(outputDir, old[1]!))) {
      renameSync(join(outputDir, name), join(outputDir, old[1]!));
      continue;
    }
    rmSync(join(outputDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

const CAUSES: ReadonlyArray<readonly [RegExp, string]> = [
  [/ENOSPC|no space left on device|errno 28\b|os error 28\b/i, "no space left on device"],
  [/EDQUOT|disk quota exceeded|errno 122\b|os error 122\b/i, "disk quota exceeded"],
  [/EROFS|read-only file system|errno 30\b|os error 30\b/i, "read-only file system"],
  [/EACCES|permission denied|errno 13\b|os error 13\b/i, "permission denied"],
];

/** The cause of a failed write in a few words when it is a known one, else the error's own message. */
export function writeFailureReason(error: unknown): string {
  const text =
    error instanceof WorkerError
      ? `${error.pythonType}: ${error.pythonMessage}`
      : `${(error as NodeJS.ErrnoException).code ?? ""} ${(error as Error).message ?? String(error)}`;
  for (const [pattern, reason] of CAUSES) if (pattern.test(text)) return reason;
  return error instanceof WorkerError ? `${error.pythonType}: ${error.pythonMessage}` : ((error as Error).message ?? String(error));
}

/** A checkpoint write failed in the worker (a Python exception) or in this process (a file system error). */
function isWriteFailure(error: unknown): boolean {
  return error instanceof WorkerError || (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string");
}

/** Saves the worker's training state and `state` as outputDir/gs{step}; returns the folder. */
export async function writeCheckpoint(worker: WorkerLink, outputDir: string, state: TrainerState): Promise<string> {
  const folder = join(outputDir, `gs${state.globalStep}`);
  let tmp: string | null = null;
  try {
    tmp = tempCheckpointDir(outputDir, state.globalStep);
    await worker.call("train_save", { dir: tmp });
    return commitCheckpoint(outputDir, tmp, state);
  } catch (error) {
    if (tmp !== null) rmSync(tmp, { recursive: true, force: true });
    if (!isWriteFailure(error)) throw error; // e.g. the worker crashed: that error says more
    throw new CheckpointWriteError(folder, writeFailureReason(error), { cause: error });
  }
}
