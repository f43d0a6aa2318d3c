/** BERT-of-Theseus: the compound model (predecessor with successor layers swapped in), its state, its successor. */
import { z } from "zod";
import { defineOp } from "./define.js";
import { modelDescription } from "./models.js";
import { modelId } from "./wire-types.js";

const probability = z.number().min(0).max(1);
const layerGroup = z.tuple([z.int(), z.int()]);

/** The replacement rate's schedule. */
export const replacementSchedule = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("constant"), rate: probability }),
  /** p(t) = min(1, base + k·t), t counted in training forwards (micro-batches). */
  z.strictObject({ type: z.literal("linear"), base: probability, k: z.number().min(0) }),
]);

export const theseusState = z.strictObject({ step: z.int(), rate: z.number(), lastReplaced: z.array(z.boolean()) });

export const theseusOps = {
  theseus_create: defineOp(
    z.strictObject({
      teacher: modelId,
      numLayers: z.int().min(1),
      /** Teacher layer indices [first, last] per successor layer (0-based); null: an even cut. */
      groups: z.array(layerGroup).nullable().default(null),
      /** Successor layer i starts as teacher layer layerMap[i]; null: the first layers (as the paper). */
      layerMap: z.array(z.int()).nullable().default(null),
      replacement: replacementSchedule.default({ type: "constant", rate: 0.5 }),
      seed: z.int().default(0),
    }),
    z.strictObject({ ...modelDescription.shape, groups: z.array(layerGroup), layerMap: z.array(z.int()) }),
  ),
  theseus_state: defineOp(z.strictObject({ model: modelId }), theseusState),
  theseus_extract: defineOp(z.strictObject({ model: modelId }), modelDescription),
};
