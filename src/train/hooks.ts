/** What a distiller or the teacher cache plugs into the loop: the feed of micro-batches and per-step hooks. */
import type { Batch } from "../worker/model-handle.js";

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

export interface StepReply {
  total?: number;
  terms?: Record<string, number>;
  lr?: number[];
  gradNorm?: number;
  /** Milliseconds the worker waited for requests since the previous optimizer step. */
  workerIdleMs?: number;
  teacherLogits?: unknown;
  /** The optimizer step did not update the weights: a non-finite loss (onNonFinite "skip") or an fp16 overflow. */
  skipped?: "non-finite" | "overflow";
  /** The loss terms that were not finite (left out of `total` / `terms`). */
  nonFinite?: string[];
  /** fp16: GradScaler's loss scale after this step. */
  lossScale?: number;
}

/** What a hook makes of a micro-batch before it is sent: a replacement batch, extra step args, its own state. */
export interface PreparedStep {
  batch?: Batch;
  args?: Record<string, unknown>;
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
