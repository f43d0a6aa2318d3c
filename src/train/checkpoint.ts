/** Checkpoint folders: written under a temporary name, completed with trainer_state.json, renamed into place. */
import { existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

export const TRAINER_STATE = "trainer_state.json";
export const LATEST = "latest";

export interface TrainerState {
  version: 1;
  globalStep: number;
  /** Epoch mode: the epoch of the next micro-batch; steps mode: the data pass. */
  epoch: number;
  /** Index of the next micro-batch within that epoch / pass. */
  nextBatch: number;
  mode: "epochs" | "steps";
  totalSteps: number;
  kdWeight: number;
  hardWeight: number;
  configs: Record<string, unknown>;
  savedAt: string;
}

export function tempCheckpointDir(outputDir: string, step: number): string {
  const dir = join(outputDir, `.gs${step}.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Adds trainer_state.json, renames tmp → gs{step}, then moves the `latest` link (last, atomically). */
export function commitCheckpoint(outputDir: string, tmpDir: string, state: TrainerState): string {
  writeFileSync(join(tmpDir, TRAINER_STATE), JSON.stringify(state, null, 2));
  const final = join(outputDir, `gs${state.globalStep}`);
  if (existsSync(final)) {
    const old = `${final}.old-${process.pid}`;
    renameSync(final, old);
    renameSync(tmpDir, final);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(tmpDir, final);
  }
  const link = join(outputDir, `.${LATEST}.tmp-${process.pid}`);
  rmSync(link, { force: true });
  symlinkSync(basename(final), link);
  renameSync(link, join(outputDir, LATEST));
  return final;
}

/** Resolves "latest" or a folder to a checkpoint folder and reads its trainer state. */
export function readCheckpoint(outputDir: string, resumeFrom: string): { dir: string; state: TrainerState } {
  let dir = resumeFrom === LATEST ? join(outputDir, LATEST) : resolve(resumeFrom);
  if (resumeFrom === LATEST) {
    if (!existsSync(dir)) throw new Error(`resumeFrom: 'latest' but ${outputDir} has no checkpoint yet (no '${LATEST}' link)`);
    dir = resolve(dirname(dir), readlinkSync(dir));
  }
  const statePath = join(dir, TRAINER_STATE);
  if (!existsSync(statePath)) throw new Error(`resumeFrom: '${dir}' has no ${TRAINER_STATE}; give a gs{step} folder written by train()`);
  return { dir, state: parseTrainerState(statePath) };
}

function parseTrainerState(statePath: string): TrainerState {
  const damaged = (why: string): Error =>
    new Error(`resumeFrom: '${statePath}' ${why}: the checkpoint is damaged; resume from another gs{step} checkpoint`);
  let state: unknown;
  try {
    state = JSON.parse(readFileSync(statePath, "utf8"));
  } catch (e) {
    throw damaged(`is not valid JSON (${(e as Error).message})`);
  }
  const s = state as Partial<TrainerState> | null;
  for (const key of ["globalStep", "epoch", "nextBatch", "totalSteps"] as const) {
    if (!Number.isInteger(s?.[key]) || (s?.[key] as number) < 0) throw damaged(`has no valid '${key}'`);
  }
  if (s?.mode !== "epochs" && s?.mode !== "steps") throw damaged("has no valid 'mode'");
  return state as TrainerState;
}
