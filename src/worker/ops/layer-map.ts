/** Layer similarity for the layer-mapping assistant (suggestLayerMap): linear CKA and attention-map similarity. */
import { z } from "zod";
import { defineOp } from "./define.js";
import { modelId, tensor } from "./wire-types.js";

const matrix = z.array(z.array(z.number()));

/** Similarity matrices (rows: the first model's layers, embeddings first) and how many tokens they were measured on. */
export const layerSimilarityResult = z.strictObject({
  tokens: z.int(),
  layersT: z.int(),
  layersS: z.int().optional(),
  teacherCka: matrix,
  teacherAttention: matrix.optional(),
  crossCka: matrix.optional(),
  crossAttention: matrix.optional(),
});

export const layerMapOps = {
  layer_similarity: defineOp(
    z.strictObject({
      teacher: modelId,
      student: modelId.nullable().default(null),
      /** The sample's record batches (input_ids and attention_mask at least). */
      batches: z.array(z.record(z.string(), tensor)).min(1),
      attention: z.boolean().default(true),
    }),
    layerSimilarityResult,
  ),
};
