/** Models shipped inside Python distributions (a Hugging Face folder as package data), found and checked in place. */
import { z } from "zod";
import { defineOp } from "./define.js";
import { jsonObject } from "./wire-types.js";

export const packagedModel = z.strictObject({
  /** Absolute path of the folder (config.json, weights, tokenizer files). */
  path: z.string(),
  distribution: z.string(),
  version: z.string(),
  files: z.array(z.string()),
  config: z.strictObject({
    model_type: z.string(),
    num_hidden_layers: z.int(),
    hidden_size: z.int(),
    num_attention_heads: z.int().nullable().optional(),
    intermediate_size: z.int().nullable().optional(),
    vocab_size: z.int().nullable().optional(),
    max_position_embeddings: z.int().nullable().optional(),
    weights: z.string(),
    checkedTensors: z.int(),
  }),
});

export const packagedOps = {
  find_packaged_model: defineOp(
    z.strictObject({ distribution: z.string().min(1), subdir: z.string().min(1), expect: jsonObject.default({}) }),
    packagedModel,
  ),
};
