/** Tiny random GPT-2 language models and causal-LM batches for the LM tests, built with the worker's interpreter. */
import { Tensor } from "../../src/index.js";
import { runPython } from "./fixtures.js";

export interface TinyGpt2Options {
  layers?: number;
  hidden?: number;
  vocab?: number;
  positions?: number;
  seed?: number;
  /** Std of the initial weights (GPT-2: 0.02); larger gives a more peaked, less uniform model. */
  initializerRange?: number;
  dropout?: number;
}

/** A random-initialised GPT2LMHeadModel saved with save_pretrained (safetensors) into dir. */
export async function makeTinyGpt2(dir: string, o: TinyGpt2Options = {}): Promise<string> {
  const d = o.dropout ?? 0;
  const code = `
import sys, torch
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(${o.seed ?? 0})
cfg = GPT2Config(vocab_size=${o.vocab ?? 40}, n_positions=${o.positions ?? 32}, n_embd=${o.hidden ?? 16}, n_layer=${o.layers ?? 2},
                 n_head=2, resid_pdrop=${d}, embd_pdrop=${d}, attn_pdrop=${d}, initializer_range=${o.initializerRange ?? 0.02})
GPT2LMHeadModel(cfg).save_pretrained(sys.argv[1], safe_serialization=True)
`;
  await runPython(code, [dir]);
  return dir;
}

/** Deterministic pseudo-random ids in [0, vocab). */
export function randomIds(rows: number, length: number, vocab: number, seed: number): number[][] {
  let x = seed * 7919 + 17;
  const next = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % vocab;
  };
  return Array.from({ length: rows }, () => Array.from({ length }, next));
}

/** A causal-LM batch of right-padded rows: `lengths[i]` real tokens, labels −100 on the first `prompt` and the padding. */
export function lmBatch(rows: number[][], lengths: number[], prompt = 0): Record<string, Tensor> {
  const ids = rows.map((r, i) => r.map((t, j) => (j < lengths[i]! ? t : 0)));
  const mask = rows.map((r, i) => r.map((_, j) => (j < lengths[i]! ? 1 : 0)));
  const labels = ids.map((r, i) => r.map((t, j) => (j >= prompt && j < lengths[i]! ? t : -100)));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(mask, "int64"),
    labels: Tensor.from(labels, "int64"),
  };
}
