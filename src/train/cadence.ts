/**
 * TextBrewer's checkpoint rules as pure functions.
 *
 * In both modes TextBrewer increments `global_step` after each optimizer step and then checks, so the first
 * possible checkpoint is global step 1 and the checks below always see the incremented value.
 */

export interface EpochCheckpointQuery {
  /** Optimizer steps taken so far, counted over the whole run (already incremented for this step). */
  readonly globalStep: number;
  /** `floor(numBatches / gradientAccumulationSteps)`: leftover micro-batches of an epoch are dropped. */
  readonly stepsPerEpoch: number;
  /** 0-based epoch index. */
  readonly epoch: number;
  readonly numEpochs: number;
  readonly ckptFrequency: number;
  readonly ckptEpochFrequency: number;
}

export interface StepsCheckpointQuery {
  readonly globalStep: number;
  readonly ckptSteps: number;
  readonly numSteps: number;
}

/** `len(dataloader) // gradient_accumulation_steps`. */
export function stepsPerEpoch(numBatches: number, gradientAccumulationSteps: number): number {
  requireInt("numBatches", numBatches, 0);
  requireInt("gradientAccumulationSteps", gradientAccumulationSteps, 1);
  return Math.floor(numBatches / gradientAccumulationSteps);
}

/**
 * The in-epoch offsets at which epoch mode saves: `[int(spe * c / ckpt_frequency) for c in range(ckpt_frequency)]`.
 * Offset 0 is the end of an epoch (`global_step % spe == 0`).
 */
export function epochCheckpointOffsets(stepsPerEpoch: number, ckptFrequency: number): number[] {
  requireInt("stepsPerEpoch", stepsPerEpoch, 0);
  requireInt("ckptFrequency", ckptFrequency, 1);
  return Array.from({ length: ckptFrequency }, (_, c) => Math.trunc((stepsPerEpoch * c) / ckptFrequency));
}

/**
 * Epoch mode: save when `global_step % spe` is one of the offsets, and the epoch is every
 * `ckptEpochFrequency`-th one or the last.
 */
export function isEpochCheckpoint(q: EpochCheckpointQuery): boolean {
  requireInt("globalStep", q.globalStep, 1);
  requireInt("stepsPerEpoch", q.stepsPerEpoch, 1);
  requireInt("epoch", q.epoch, 0);
  requireInt("numEpochs", q.numEpochs, 1);
  requireInt("ckptEpochFrequency", q.ckptEpochFrequency, 1);
  const offsets = epochCheckpointOffsets(q.stepsPerEpoch, q.ckptFrequency);
  const atOffset = offsets.includes(q.globalStep % q.stepsPerEpoch);
  const epochSelected = (q.epoch + 1) % q.ckptEpochFrequency === 0 || q.epoch + 1 === q.numEpochs;
  return atOffset && epochSelected;
}

/** Steps mode (also MultiTask): save every `ckptSteps` global steps and at the last step. */
export function isStepsCheckpoint(q: StepsCheckpointQuery): boolean {
  requireInt("globalStep", q.globalStep, 1);
  requireInt("ckptSteps", q.ckptSteps, 1);
  requireInt("numSteps", q.numSteps, 1);
  return q.globalStep % q.ckptSteps === 0 || q.globalStep === q.numSteps;
}

export type CheckpointPlan =
  | {
      readonly mode: "epochs";
      readonly numBatches: number;
      readonly gradientAccumulationSteps: number;
      readonly numEpochs: number;
      readonly ckptFrequency: number;
      readonly ckptEpochFrequency: number;
    }
  | { readonly mode: "steps"; readonly numSteps: number; readonly ckptSteps: number };

/** Every global step at which a run saves a checkpoint (and then runs the callback), in order. */
export function plannedCheckpointSteps(plan: CheckpointPlan): number[] {
  const saved: number[] = [];
  if (plan.mode === "steps") {
    for (let globalStep = 1; globalStep <= plan.numSteps; globalStep++) {
      if (isStepsCheckpoint({ globalStep, ckptSteps: plan.ckptSteps, numSteps: plan.numSteps })) saved.push(globalStep);
    }
    return saved;
  }
  const spe = stepsPerEpoch(plan.numBatches, plan.gradientAccumulationSteps);
  requireInt("numEpochs", plan.numEpochs, 0);
  if (spe === 0) return saved; // no optimizer step ever happens
  for (let epoch = 0; epoch < plan.numEpochs; epoch++) {
    for (let i = 1; i <= spe; i++) {
      const globalStep = epoch * spe + i;
      const query: EpochCheckpointQuery = {
        globalStep,
        stepsPerEpoch: spe,
        epoch,
        numEpochs: plan.numEpochs,
        ckptFrequency: plan.ckptFrequency,
        ckptEpochFrequency: plan.ckptEpochFrequency,
      };
      if (isEpochCheckpoint(query)) saved.push(globalStep);
    }
  }
  return saved;
}

function requireInt(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}
