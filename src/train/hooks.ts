/** What a distiller or the teacher cache plugs into the loop: the feed of micro-batches and per-step hooks. */
import type { z } from "zod";
import type { Batch } from "../worker/model-handle.js";
import type { stepReply, trainStepExtras } from "../worker/ops/training.js";

/** One micro-batch as the loop sees it. */
export interface StepItem {
  batch: Batch;
  task?: string;
}

/** Where a run's micro-batches come from, per epoch (or per data pass in steps mode). */
export interface StepFeed {
  readonly replayable: boolean;
  epoch(index: number): { items: AsyncIterable<StepItem> | Iterable<StepItem>; length: number | null };
}

/** The worker's reply to a step (the train_step op's result). */
export type StepReply = z.output<typeof stepReply>;

/** What a hook makes of a micro-batch before it is sent: a replacement batch, extra step args, its own state. */
export interface PreparedStep {
  batch?: Batch;
  /** Step args beyond the loop's own (cached teacher targets, or asking for them back). */
  args?: z.input<typeof trainStepExtras>;
  state?: unknown;
}

/** Per-step extras a distiller adds (e.g. cached teacher logits) and what it does with the reply. */
export interface StepHooks {
  beforeStep?(item: StepItem): Promise<PreparedStep> | PreparedStep;
  afterStep?(prepared: PreparedStep, reply: StepReply): Promise<void> | void;
  /** The step prepared by beforeStep failed (afterStep will not run for it); release what beforeStep holds. */
  stepFailed?(prepared: PreparedStep): void;
  /** Counters added to every metrics line (e.g. cache hits, teacher forwards skipped). */
  metrics?(): Record<string, number>;
}
