/** Options of `train()`, shared by every distiller. */
import { z } from "zod";
import { ConfigError } from "../config/errors.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";

import { NO_DECAY_GROUP, OptimizerSpec, type OptimizerSpecInput, SchedulerSpec } from "./optimizer-spec.js";

export { NO_DECAY_GROUP, OptimizerSpec, type OptimizerSpecInput, SchedulerSpec };

export type DataSource =
  | readonly Batch[]
  | Iterable<Batch>
  | AsyncIterable<Batch>
  | ((epoch: number) => readonly Batch[] | Iterable<Batch> | AsyncIterable<Batch>);

export interface CallbackInfo {
  step: number;
  epoch: number;
  student: ModelHandle;
  checkpointDir: string;
}

/** What train() does when a loss term is NaN or ±Inf (fp32/bf16): reject, or skip the step without updating. */
export type NonFiniteAction = "raise" | "skip";

/** Options of the shared training loop: `BasicTrainer.train()` takes these, the distillers add their own. */
export interface LoopOptions {
  optimizer: OptimizerSpecInput;
  scheduler?: z.input<typeof SchedulerSpec>;
  /** Batches: an array, an (async) iterable, or a function of the epoch (or data pass in steps mode). */
  data: DataSource;
  /** Epoch mode: this many passes over the data (a positive integer). */
  numEpochs?: number;
  /** Steps mode: this many optimizer steps (a positive integer), cycling through the data; wins over numEpochs. */
  numSteps?: number;
  /** Clip the student's gradient norm (TextBrewer: student parameters only); ≤ 0 disables. */
  maxGradNorm?: number;
  /** Awaited after each checkpoint; a throw stops train(), which rejects with it. */
  callback?: (info: CallbackInfo) => unknown;
  /** Applied to each batch before it is sent. */
  batchPostprocessor?: (batch: Batch) => Batch;
  /** Extra keyword arguments for every forward (teacher and student), e.g. { token_type_ids: … } or flags. */
  forwardArgs?: Record<string, unknown>;
  /** Continue from a checkpoint: "latest" (outputDir/latest) or a gs{step} folder. */
  resumeFrom?: string;
  /** Step requests kept in flight so the worker never waits for TypeScript. Default 2. */
  inFlight?: number;
  /** Fetch loss values every N micro-batches (each fetch is a host sync on GPU). Default 1. */
  logEvery?: number;
  /** torch.compile the student's forward (helps on GPU; the first steps pay the compile time). Default false. */
  compile?: boolean;
  /** Check the plan on the first batch before step 0 (layer indices, features, widths, masks). Default true. */
  preflight?: boolean;
  /** Stop after the preflight check: nothing is trained or saved (a dry run). */
  preflightOnly?: boolean;
  /** Show a progress bar (default: when stderr is a TTY). */
  progress?: boolean;
  /**
   * When stderr is no TTY and no bar is shown (CI, a pipe, a log file): a plain log line every N optimizer steps,
   * at each checkpoint and at the last step. 0 turns the lines off. Default: a line about every 15 s.
   */
  logLineEvery?: number;
  /**
   * A NaN/Inf loss (fp32/bf16): "raise" rejects with NonFiniteLossError, "skip" skips the step (no update; counted
   * as `skippedSteps` in metrics.jsonl). fp16 steps GradScaler skips for overflow are never an error. Default "raise".
   */
  onNonFinite?: NonFiniteAction;
}

const isFunction = (v: unknown): boolean => typeof v === "function";

/** The keys of LoopOptions and what each accepts; the optimizer and scheduler are checked by their own schemas. */
export const loopOptionsShape = {
  optimizer: z.unknown(),
  scheduler: z.unknown().optional(),
  data: z.custom<DataSource>((v) => v !== undefined && v !== null, {
    message: "expected an array, an (async) iterable or a function (epoch) => batches",
  }),
  numEpochs: z.int().positive().optional(),
  numSteps: z.int().positive().optional(),
  maxGradNorm: z.number().optional(),
  callback: z.custom<LoopOptions["callback"]>(isFunction, { message: "expected a function" }).optional(),
  batchPostprocessor: z.custom<LoopOptions["batchPostprocessor"]>(isFunction, { message: "expected a function" }).optional(),
  forwardArgs: z.record(z.string(), z.unknown()).optional(),
  resumeFrom: z.string().min(1).optional(),
  inFlight: z.int().positive().optional(),
  logEvery: z.int().positive().optional(),
  compile: z.boolean().optional(),
  preflight: z.boolean().optional(),
  preflightOnly: z.boolean().optional(),
  progress: z.boolean().optional(),
  logLineEvery: z.int().min(0).optional(),
  onNonFinite: z.enum(["raise", "skip"]).optional(),
} satisfies z.ZodRawShape;

/**
 * Checks train() options: known keys only (with "did you mean" for a misspelt one), each value of the right kind.
 * `extra` declares the keys a distiller adds (e.g. teacherCache), checked by the distiller itself.
 */
export function parseLoopOptions<T extends LoopOptions>(input: T, extra: z.ZodRawShape = {}): T {
  const schema = z.strictObject({ ...loopOptionsShape, ...extra });
  const r = schema.safeParse(input, { reportInput: true });
  if (!r.success) throw ConfigError.fromZod("train options", r.error, { schema, input });
  return input;
}

export function parseOptimizer(input: unknown): OptimizerSpec {
  const r = OptimizerSpec.safeParse(input, { reportInput: true });
  if (!r.success) throw ConfigError.fromZod("optimizer", r.error, { schema: OptimizerSpec, input });
  return r.data;
}

export function parseScheduler(input: unknown): SchedulerSpec | undefined {
  if (input === undefined) return undefined;
  const r = SchedulerSpec.safeParse(input, { reportInput: true });
  if (!r.success) throw ConfigError.fromZod("scheduler", r.error, { schema: SchedulerSpec, input });
  return r.data;
}
