/** Test fixtures built on the spot with the worker's own interpreter: tiny random models saved as HF folders. */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { pythonEnv, resolvePython } from "../../src/env/python-env.js";

export function tempDir(prefix = "tbts-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export async function runPython(code: string, args: string[] = []): Promise<string> {
  const { python } = resolvePython();
  const r = await execa(python, ["-c", code, ...args], { env: pythonEnv() });
  return String(r.stdout);
}

export interface TinyBertOptions {
  layers?: number;
  hidden?: number;
  heads?: number;
  vocab?: number;
  numLabels?: number;
  seed?: number;
  /** hidden and attention dropout (default 0.1, as BERT) */
  dropout?: number;
  arch?: "BertForSequenceClassification" | "BertForTokenClassification" | "BertModel";
}

/** A random-initialised BERT saved with save_pretrained (safetensors) into dir. */
export async function makeTinyBert(dir: string, o: TinyBertOptions = {}): Promise<string> {
  const code = `
import sys, torch, transformers
from transformers import BertConfig
torch.manual_seed(${o.seed ?? 0})
cfg = BertConfig(vocab_size=${o.vocab ?? 100}, hidden_size=${o.hidden ?? 32}, num_hidden_layers=${o.layers ?? 4},
                 num_attention_heads=${o.heads ?? 4}, intermediate_size=${(o.hidden ?? 32) * 2}, max_position_embeddings=64,
                 num_labels=${o.numLabels ?? 3}, hidden_dropout_prob=${o.dropout ?? 0.1}, attention_probs_dropout_prob=${o.dropout ?? 0.1})
model = getattr(transformers, "${o.arch ?? "BertForSequenceClassification"}")(cfg)
model.save_pretrained(sys.argv[1], safe_serialization=True)
`;
  await runPython(code, [dir]);
  return dir;
}
