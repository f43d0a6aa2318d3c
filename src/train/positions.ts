/**
 * Where each micro-batch of a run falls: its epoch (or data pass), its index there, whether it ends an
 * optimizer step, and the position to resume from after it. One generator serves both modes.
 *
 * Epoch mode follows TextBrewer's epoch loop: the accumulation counter is the index in the epoch and the
 * micro-batches past the last full accumulation of an epoch are dropped. Steps mode follows
 * `enumerate(cycle(dataloader))`: micro-batches are counted over the cycled data, so an accumulation group may
 * run across the end of a pass.
 */
import { DataSourceError, iterate } from "./data.js";
import type { StepFeed, StepItem } from "./hooks.js";

export type TrainMode = "epochs" | "steps";

/** A place in the data: the epoch or pass, and the index of the next micro-batch in it. */
export interface DataPosition {
  pass: number;
  index: number;
}

export interface Position {
  /** Epoch (epoch mode) or data pass (steps mode) of this micro-batch. */
  pass: number;
  /** Index of this micro-batch in its epoch or pass. */
  index: number;
  /** Micro-batches of the run up to and including this one (counted from the start, resumed runs included). */
  micro: number;
  /** This micro-batch ends an accumulation group: the optimizer steps after it. */
  optimizerStep: boolean;
  /** Optimizer steps taken once this micro-batch is done. */
  globalStep: number;
  /** Where a run resumed after this micro-batch starts. */
  next: DataPosition;
}

export interface PositionPlan {
  mode: TrainMode;
  gradientAccumulationSteps: number;
  /** Epoch mode: optimizer steps per epoch and the number of epochs. */
  stepsPerEpoch?: number;
  numEpochs?: number;
  /** Steps mode: the optimizer steps of the run. */
  totalSteps: number;
}

/** Every micro-batch from `start` (a fresh run: step 0 at pass 0, index 0) to the end of the run. */
export async function* positions(
  feed: StepFeed,
  plan: PositionPlan,
  start: DataPosition & { globalStep: number },
): AsyncGenerator<{ item: StepItem; at: Position }> {
  const gas = plan.gradientAccumulationSteps;
  let globalStep = start.globalStep;
  // checkpoints fall on optimizer steps, so the micro-batches before one are always globalStep * gas
  let micro = globalStep * gas;
  let { pass, index } = start;
  while (plan.mode === "epochs" ? pass < plan.numEpochs! : globalStep < plan.totalSteps) {
    const data = feed.epoch(pass);
    const limit = plan.mode === "epochs" ? plan.stepsPerEpoch! * gas : Infinity;
    const length = data.length ?? Infinity;
    const resumedAt = index;
    let yielded = 0;
    if (index < limit) {
      for await (const item of iterate<StepItem>(data.items, index)) {
        if (index >= limit) break;
        yielded++;
        micro++;
        const optimizerStep = plan.mode === "epochs" ? (index + 1) % gas === 0 : micro % gas === 0;
        if (optimizerStep) globalStep++;
        const endOfPass = index + 1 >= Math.min(limit, length);
        const next = endOfPass ? { pass: pass + 1, index: 0 } : { pass, index: index + 1 };
        yield { item, at: { pass, index, micro, optimizerStep, globalStep, next } };
        index++;
        if (plan.mode === "steps" && optimizerStep && globalStep >= plan.totalSteps) return;
      }
    }
    if (plan.mode === "steps") {
      // a pass resumed exactly at its end yields nothing; a pass read from its start must yield something
      if (yielded === 0 && resumedAt === 0) {
        throw new DataSourceError(`data: pass ${pass} yielded no batches; steps mode needs data to cycle through`);
      }
      if (!feed.replayable) {
        throw new DataSourceError(
          "data: the iterable ran out before numSteps; pass an array or a function (epoch) => batches so it can cycle",
        );
      }
    }
    pass++;
    index = 0;
  }
}
