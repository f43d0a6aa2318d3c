/** A rank's place in a process group (torchrun), and keeping the ranks' copies of a model equal. */
import { z } from "zod";
import { defineOp } from "./define.js";
import { modelId, nothing } from "./wire-types.js";

export const distInfo = z.strictObject({
  rank: z.int().min(0),
  localRank: z.int().min(0),
  worldSize: z.int().min(1),
  /** null outside a process group. */
  backend: z.string().nullable(),
});

export const distributedOps = {
  dist_info: defineOp(z.strictObject({}), distInfo),
  dist_broadcast_model: defineOp(z.strictObject({ model: modelId }), nothing),
};
