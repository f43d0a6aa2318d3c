/** Ops of the teacher-output cache: the teacher's fingerprint and teacher-only forwards. */
import { z } from "zod";
import { adaptorSpecSchema } from "../../adaptor/spec.js";
import { defineOp } from "./define.js";
import { jsonObject, modelId, PYTHON_TYPE, tensor, tensorTree } from "./wire-types.js";

/** An adaptor spec as the worker applies it (see src/adaptor/spec.ts); a plain dict in Python. */
const adaptorSpec = adaptorSpecSchema.meta({ [PYTHON_TYPE]: "dict[str, Any]" });

export const cacheOps = {
  /** sha256 over the model's state dict (names, dtypes, shapes, bytes): one weight changed, another hash. */
  model_fingerprint: defineOp(z.strictObject({ model: modelId }), z.string()),
  /**
   * Teacher-only forward without gradients: the logits the adaptor selects, averaged over several teachers; with topK,
   * the top-k log-probabilities at `temperature` and their indices ([values_0, indices_0, …]).
   */
  teacher_logits: defineOp(
    z.strictObject({
      teachers: z.array(modelId).min(1),
      adaptors: z.array(adaptorSpec).min(1),
      batch: tensorTree,
      forwardArgs: jsonObject.default({}),
      topK: z.int().min(1).nullable().default(null),
      temperature: z.number().positive().default(1),
    }),
    z.strictObject({ logits: z.union([tensor, z.array(tensor)]) }),
  ),
};
