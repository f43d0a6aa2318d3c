/** Ops of a training run: configure, preflight, step, checkpoint save/load, end. */
import { z } from "zod";
import { SparseSupport, SparseTail } from "../../train/plan.js";
import { defineOp } from "./define.js";
import { trainPlan } from "./plan.js";
import { cachedFeatures, featureSelection } from "./teacher-features.js";
import { anyNumber, nothing, tensor, tensorTree } from "./wire-types.js";

/** Teacher logits from the cache: one tensor per logits tensor of the adaptor (a bare tensor is one). */
const cachedLogits = z.union([tensor, z.array(tensor)]);

/** Step args a step hook adds (the teacher-output cache): cached targets instead of the teacher, or the targets back. */
export const trainStepExtras = z.strictObject({
  /** Dense cached teacher logits; the teacher's forward is skipped. */
  teacherLogits: cachedLogits.optional(),
  /** Cached top-k targets ([values_0, indices_0, …]) and how the missing mass is spread. */
  teacherTopK: z
    .strictObject({
      targets: z.array(tensor),
      tail: SparseTail.default("ignore"),
      support: SparseSupport.default("teacher"),
      /** "topk": [values, indices] pairs; "sampled": [log-probabilities of the draws, drawn ids] pairs (teacherCache.samples). */
      form: z.enum(["topk", "sampled"]).default("topk"),
    })
    .optional(),
  /** Return the teacher's targets of this step (to fill the cache). */
  returnTeacherLogits: z.boolean().default(false),
  /** With returnTeacherLogits: return top-k log-probabilities instead of dense logits. */
  returnTopK: z.int().min(1).nullable().default(null),
  /** Cached teacher features the matches read; with them (and teacherLogits when the KD needs logits) no teacher forward runs. */
  teacherFeatures: cachedFeatures.optional(),
  /** Return these teacher features of this step (to fill the cache), and the teacher's dense logits when it has any. */
  returnTeacherFeatures: featureSelection.nullable().default(null),
  /** With returnTeacherLogits: return n ids drawn from the teacher's distribution per row (seeded) and their log-probabilities. */
  returnSamples: z
    .strictObject({ n: z.int().min(1), seed: z.int().min(0) })
    .nullable()
    .default(null),
});

export const trainStepArgs = z.strictObject({
  batch: tensorTree,
  task: z.string().nullable().default(null),
  /** This micro-batch ends an accumulation group: clip, step the optimizer and the scheduler. */
  optimizerStep: z.boolean().default(false),
  /** Reply with the loss terms, total and learning rates. */
  report: z.boolean().default(false),
  kdWeight: z.number().default(1),
  hardWeight: z.number().default(0),
  /** Causal-LM KD: the valid target tokens of every micro-batch of this optimizer step (over all ranks). */
  stepTokens: z.int().min(0).optional(),
  /** Clear the gradients before this micro-batch's backward. */
  zeroGrad: z.boolean().default(false),
  ...trainStepExtras.shape,
});

export const stepReply = z.strictObject({
  total: anyNumber.optional(),
  terms: z.record(z.string(), anyNumber).optional(),
  lr: z.array(anyNumber).optional(),
  gradNorm: anyNumber.optional(),
  /** Milliseconds the worker waited for requests since the previous optimizer step. */
  workerIdleMs: anyNumber.optional(),
  teacherLogits: z.array(tensor).optional(),
  /** With returnTeacherFeatures: the features in their storage form (int8: rows, scales per feature). */
  teacherFeatures: z.array(tensor).optional(),
  /** The optimizer step did not update the weights: a non-finite loss (onNonFinite "skip") or an fp16 overflow. */
  skipped: z.enum(["non-finite", "overflow"]).optional(),
  /** The loss terms that were not finite (left out of `total` / `terms`). */
  nonFinite: z.array(z.string()).optional(),
  /** fp16: GradScaler's loss scale after this step. */
  lossScale: anyNumber.optional(),
});

export const trainingOps = {
  train_configure: defineOp(
    z.strictObject({ plan: trainPlan }),
    z.strictObject({ projectionParameters: z.int(), parameterGroups: z.int(), warnings: z.array(z.string()) }),
  ),
  /** Runs the first batch without updating anything, to find mistakes (shapes, adaptor keys) before the run. */
  train_preflight: defineOp(
    z.strictObject({ batch: tensorTree, task: z.string().nullable().default(null) }),
    z.strictObject({ terms: z.array(z.string()) }),
  ),
  train_step: defineOp(trainStepArgs, stepReply),
  train_save: defineOp(z.strictObject({ dir: z.string().min(1) }), z.strictObject({ files: z.array(z.string()) })),
  train_load: defineOp(z.strictObject({ dir: z.string().min(1) }), nothing),
  train_end: defineOp(z.strictObject({}), nothing),
};
