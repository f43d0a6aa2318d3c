/**
 * What a model or tokenizer handle knows of the worker it lives in, and what a training run needs of it: sending
 * requests and the worker's facts. `Worker` implements it; the handles and the training code depend on this
 * interface rather than on worker.ts, which creates the handles (so the two do not import each other).
 */
import type { z } from "zod";
import type { OpArgs, OpName, OpResult } from "./ops/index.js";
import type { workerInfo } from "./ops/misc.js";

/** The worker's interpreter, packages and device (the `info` op). */
export type WorkerInfo = z.output<typeof workerInfo>;

export interface CallOptions {
  signal?: AbortSignal;
}

/** call()'s arguments after the op: args may be left out when the op needs none. */
export type CallArgs<N extends OpName> =
  Record<never, never> extends OpArgs<N> ? [args?: OpArgs<N>, options?: CallOptions] : [args: OpArgs<N>, options?: CallOptions];

export interface WorkerLink {
  readonly info: WorkerInfo;
  /**
   * Sends one request of the op catalogue (src/worker/ops/): args are checked and completed with their defaults before
   * anything is sent, the result is checked when it arrives. See `Worker.call`.
   */
  call<N extends OpName>(op: N, ...rest: CallArgs<N>): Promise<OpResult<N>>;
  /** Calls a Python function "file.py:function" in the worker with keyword arguments. See `Worker.runPython`. */
  runPython(ref: string, args?: Record<string, unknown>, options?: CallOptions): Promise<unknown>;
}
