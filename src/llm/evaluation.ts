/**
 * Evaluation of a causal LM at each checkpoint: perplexity on held-out text and a few generated samples, written to
 * the checkpoint's eval.json (read by `textbrewer report`: the metrics plotted, the samples shown) and to the run's
 * TensorBoard log (eval/perplexity, eval/sample_i) when it has one.
 */

import { writeEvalResult } from "../report/eval-file.js";
import type { Tensor } from "../tensor/tensor.js";
import type { CallbackInfo } from "../train/options.js";
import type { ModelHandle } from "../worker/model-handle.js";

export interface LmEvalOptions {
  /** Held-out batches: (batch, length) `input_ids`, with `attention_mask` and `labels` (-100: no target) if any. */
  heldOut: ReadonlyArray<Record<string, Tensor>>;
  /** (n, prompt length) int64 prompts to continue; none: no samples. */
  prompts?: Tensor;
  /** Default 32. */
  maxNewTokens?: number;
  /** Default 1. */
  temperature?: number;
  /** Default 1. */
  topP?: number;
  /**
   * The samples' own seed (default 0): the same prompts give comparable samples at every checkpoint, and the run's RNG
   * is left alone, so a run resumed from a checkpoint continues exactly as the uninterrupted one.
   */
  seed?: number;
  /** Turns token ids into text (e.g. the tokenizer's decode); without it a sample is its ids. */
  decode?: (ids: number[]) => string | Promise<string>;
}

export interface LmEvalResult {
  perplexity: number;
  /** Mean negative log-likelihood per target token (nats). */
  nll: number;
  tokens: number;
  samples: string[];
}

/** Perplexity of `model` on the held-out batches, and its samples from the prompts. */
export async function evaluateLm(model: ModelHandle, options: LmEvalOptions): Promise<LmEvalResult> {
  if (!options.heldOut.length) throw new Error("heldOut: give at least one batch of held-out text");
  let nll = 0;
  let tokens = 0;
  for (const [i, batch] of options.heldOut.entries()) {
    const inputIds = batch.input_ids;
    if (!inputIds) throw new Error(`heldOut[${i}]: no input_ids; give records of input_ids (and attention_mask, labels)`);
    const r = await model.worker.call("lm_nll", {
      model: model.id,
      inputIds,
      ...(batch.attention_mask ? { attentionMask: batch.attention_mask } : {}),
      ...(batch.labels ? { labels: batch.labels } : {}),
    });
    nll += r.nll;
    tokens += r.tokens;
  }
  const samples: string[] = [];
  if (options.prompts) {
    const { tokens: out } = await model.worker.call("generate", {
      model: model.id,
      inputIds: options.prompts,
      maxNewTokens: options.maxNewTokens ?? 32,
      temperature: options.temperature ?? 1,
      topP: options.topP ?? 1,
      seed: options.seed ?? 0,
    });
    const [rows, width] = out.shape as [number, number];
    const flat = out.toFlatArray();
    for (let r = 0; r < rows; r++) {
      const ids = flat.slice(r * width, (r + 1) * width);
      samples.push(options.decode ? await options.decode(ids) : ids.join(" "));
    }
  }
  const perToken = tokens ? nll / tokens : Number.NaN;
  return { perplexity: Math.exp(perToken), nll: perToken, tokens, samples };
}

/**
 * A train() callback that evaluates the student at each checkpoint (see evaluateLm) and records the result in the
 * checkpoint's eval.json and the run's TensorBoard log. `onResult` sees each result (e.g. to print it).
 */
export function lmEvalCallback(
  options: LmEvalOptions & { onResult?: (result: LmEvalResult, info: CallbackInfo) => unknown },
): (info: CallbackInfo) => Promise<void> {
  return async (info) => {
    const result = await evaluateLm(info.student, options);
    const texts = Object.fromEntries(result.samples.map((s, i) => [`sample_${i}`, s]));
    writeEvalResult(info.checkpointDir, info.step, { perplexity: result.perplexity, nll: result.nll }, texts);
    await info.student.worker.call("lm_log_eval", {
      step: info.step,
      scalars: { perplexity: result.perplexity, nll: result.nll },
      texts,
    });
    await options.onResult?.(result, info);
  };
}
