/** Ops on Hugging Face fast tokenizers in the worker; their encodings are int64 tensors, ready to be batches. */
import { z } from "zod";
import { defineOp } from "./define.js";
import { nothing, tensor, tokenizerId } from "./wire-types.js";

export const PADDINGS = ["longest", "max_length", "do_not_pad"] as const;

export const tokenizerDescription = z.strictObject({
  handle: tokenizerId,
  className: z.string(),
  vocabSize: z.int(),
  modelMaxLength: z.int().nullable(),
  padTokenId: z.int().nullable(),
  clsTokenId: z.int().nullable(),
  sepTokenId: z.int().nullable(),
  maskTokenId: z.int().nullable(),
  unkTokenId: z.int().nullable(),
  modelInputNames: z.array(z.string()),
});

/** Cut (and with padding "max_length", pad) to maxLength tokens, special tokens included. */
const lengthOptions = {
  maxLength: z.int().min(2).nullable().default(null),
  padding: z.enum(PADDINGS).default("longest"),
  truncation: z.boolean().default(true),
};

const encoding = z.record(z.string(), tensor);

export const tokenizerOps = {
  load_tokenizer: defineOp(z.strictObject({ path: z.string().min(1), trustRemoteCode: z.boolean().default(false) }), tokenizerDescription),
  tokenize: defineOp(
    z.strictObject({
      tokenizer: tokenizerId,
      texts: z.array(z.string()).min(1),
      textPairs: z.array(z.string()).nullable().default(null),
      ...lengthOptions,
    }),
    encoding,
  ),
  tokenize_words: defineOp(
    z.strictObject({
      tokenizer: tokenizerId,
      words: z.array(z.array(z.string())).min(1),
      labels: z.array(z.array(z.int())).nullable().default(null),
      ...lengthOptions,
      labelAllSubwords: z.boolean().default(false),
    }),
    encoding,
  ),
  dispose_tokenizer: defineOp(z.strictObject({ tokenizer: tokenizerId }), nothing),
};
