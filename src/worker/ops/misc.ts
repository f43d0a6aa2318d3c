/** Ops of the worker itself: liveness, facts, seeding, shutdown, and calling the user's own Python. */
import { z } from "zod";
import { defineOp } from "./define.js";
import { jsonObject, nothing } from "./wire-types.js";

const noArgs = z.strictObject({});

export const workerInfo = z.strictObject({
  python: z.string(),
  executable: z.string(),
  platform: z.string(),
  torch: z.string(),
  transformers: z.string(),
  pyzmq: z.string(),
  libzmq: z.string(),
  numpy: z.string(),
  cuda: z.boolean(),
  cudaVersion: z.string().nullable(),
  devices: z.array(z.string()),
  device: z.string(),
  threads: z.int(),
});

export const miscOps = {
  ping: defineOp(noArgs, nothing),
  /** Sends its args back; `transpose: true` returns each 2-D tensor transposed (a non-contiguous view). */
  echo: defineOp(jsonObject, jsonObject),
  info: defineOp(noArgs, workerInfo),
  shutdown: defineOp(noArgs, nothing),
  /** Seeds Python, numpy and torch, so that what is created next (a new head, a createModel) is reproducible. */
  seed: defineOp(z.strictObject({ seed: z.int().min(0) }), nothing),
  /** Calls "file.py:function" (or "package.module:function") with `args` as keyword arguments; the result is the user's. */
  call_python: defineOp(z.strictObject({ ref: z.string().min(1), args: jsonObject.default({}) }), z.unknown()),
};
