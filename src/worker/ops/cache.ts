/** Ops of the teacher-output cache: the teacher's fingerprint and teacher-only forwards. */
import { z } from "zod";
import { adaptorSpecSchema } from "../../adaptor/spec.js";
import { MatchTermSpec } from "../../train/plan.js";
import { defineOp } from "./define.js";
import { featureDtype, featureSelection } from "./teacher-features.js";
import { anyNumber, jsonObject, modelId, PYTHON_TYPE, tensor, tensorTree } from "./wire-types.js";

/** An adaptor spec as the worker applies it (see src/adaptor/spec.ts); a plain dict in Python. */
const adaptorSpec = adaptorSpecSchema.meta({ [PYTHON_TYPE]: "dict[str, Any]" });

const topKEntry = z.strictObject({
  k: z.number(),
  keptMass: z.number(),
  klRenormalizedToFull: z.number(),
  klFullToUniformTail: z.number(),
  bytesPerToken: z.number(),
});
const sampledEntry = z.strictObject({
  samples: z.number(),
  klSampledToFull: z.number(),
  distinctIds: z.number(),
  bytesPerToken: z.number(),
});
/** How far sparse teacher targets are from the full distribution on a sample, and what each form costs. */
export const fidelityReport = z.strictObject({
  positions: z.number(),
  vocab: z.number(),
  idBytes: z.number(),
  dense: z.strictObject({ bytesPerToken: z.number() }),
  topK: z.array(topKEntry),
  sampled: z.array(sampledEntry),
});

const storedLoss = z.strictObject({ dtype: featureDtype, loss: anyNumber, absDiff: anyNumber, relDiff: anyNumber });
/** On a sample: each match's loss from live teacher features and from each storage form of them, and what each costs. */
export const featureFidelityReport = z.strictObject({
  examples: z.number(),
  bytesPerExample: z.array(z.strictObject({ dtype: featureDtype, bytes: z.number() })),
  matches: z.array(z.strictObject({ name: z.string(), live: anyNumber, stored: z.array(storedLoss) })),
});

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
      /** n ids drawn per row from the teacher's distribution (seeded) with their log-probabilities, instead of logits. */
      samples: z
        .strictObject({ n: z.int().min(1), seed: z.int().min(0) })
        .nullable()
        .default(null),
      temperature: z.number().positive().default(1),
      /** Also return these teacher features (after the adaptor); then logits are optional ([] when there are none). */
      features: featureSelection.nullable().default(null),
    }),
    z.strictObject({ logits: z.union([tensor, z.array(tensor)]), features: z.array(tensor).optional() }),
  ),
  /**
   * The fidelity report of cached features on one batch: each match's loss (the student at its current weights, a
   * projection initialised from `seed`) from the live teacher features and from each storage form of them.
   */
  teacher_feature_fidelity: defineOp(
    z.strictObject({
      student: modelId,
      teacher: modelId,
      adaptorS: adaptorSpec,
      adaptorT: adaptorSpec,
      matches: z.array(MatchTermSpec).min(1),
      batch: tensorTree,
      forwardArgs: jsonObject.default({}),
      dtypes: z.array(featureDtype).min(1),
      seed: z.int().default(0),
    }),
    featureFidelityReport,
  ),
  /** The fidelity report of sparse targets (top-k and sampled) on one batch: one report per teacher logits tensor. */
  teacher_sparse_fidelity: defineOp(
    z.strictObject({
      teachers: z.array(modelId).min(1),
      adaptors: z.array(adaptorSpec).min(1),
      batch: tensorTree,
      forwardArgs: jsonObject.default({}),
      temperature: z.number().positive(),
      ks: z.array(z.int().min(1)).min(1),
      samples: z.array(z.int().min(1)),
      seed: z.int().default(0),
    }),
    z.array(fidelityReport),
  ),
};
