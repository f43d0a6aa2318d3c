/** Ops for causal language models: sampling continuations, and the summed next-token loss of held-out text. */
import { z } from "zod";
import { defineOp } from "./define.js";
import { anyNumber, modelId, tensor } from "./wire-types.js";

/** How continuations are sampled (the generate op, and on-policy distillation). */
export const samplingOptions = {
  /** Tokens sampled after the prompt. */
  maxNewTokens: z.int().min(1),
  /** Softmax temperature of the sampling distribution. */
  temperature: z.number().positive().default(1),
  /** Nucleus sampling: the smallest set of tokens whose probability reaches topP (1: the whole vocabulary). */
  topP: z.number().gt(0).max(1).default(1),
};

export const generateArgs = z.strictObject({
  model: modelId,
  /** (batch, prompt length) int64 token ids; every row is a full prompt (no padding). */
  inputIds: tensor,
  ...samplingOptions,
  /** null: the worker's RNG (seeded by seed / TrainingConfig.seed, saved in checkpoints); a number: its own generator. */
  seed: z.int().min(0).nullable().default(null),
});

export const lmNllArgs = z.strictObject({
  model: modelId,
  /** (batch, length) int64 token ids. */
  inputIds: tensor,
  /** (batch, length); 0 marks padding. */
  attentionMask: tensor.optional(),
  /** (batch, length) next-token targets (-100: none); default the input ids. */
  labels: tensor.optional(),
});

export const lmOps = {
  /** Samples continuations of the prompts; returns prompt + new tokens, (batch, prompt length + maxNewTokens). */
  generate: defineOp(generateArgs, z.strictObject({ tokens: tensor })),
  /** Σ −log p(next token) over the valid targets of a batch, and their count (perplexity = exp(nll / tokens)). */
  lm_nll: defineOp(lmNllArgs, z.strictObject({ nll: anyNumber, tokens: z.int() })),
  /** Evaluation scalars and texts into the TensorBoard log of the training run now configured; false when it has none. */
  lm_log_eval: defineOp(
    z.strictObject({
      step: z.int().min(0),
      scalars: z.record(z.string(), z.number()),
      texts: z.record(z.string(), z.string()).default({}),
    }),
    z.boolean(),
  ),
};
