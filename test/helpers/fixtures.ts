/**
 * The shared setup of the tests: temp folders, a worker per suite, tiny random models and tokenizers built on the
 * spot with the worker's own interpreter, and the independent Python references in test/reference/.
 */

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll } from "vitest";
import { pythonEnv, resolvePython } from "../../src/env/python-env.js";
import type { Tensor } from "../../src/index.js";
import { Worker, type WorkerOptions } from "../../src/worker/worker.js";

export function tempDir(prefix = "tbts-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A temp folder for the describe block (or file) that calls this: made in its beforeAll and removed in its afterAll,
 * so a block that a test name filter skips makes none. Read `path` in tests and hooks, not in the describe body.
 */
export function useTempDir(prefix = "tbts-"): { readonly path: string } {
  let dir: ReturnType<typeof tempDir> | undefined;
  beforeAll(() => {
    dir = tempDir(prefix);
  });
  afterAll(() => dir?.cleanup());
  return {
    get path(): string {
      if (!dir) throw new Error("useTempDir: the folder is made in beforeAll; read its path in a test or a hook");
      return dir.path;
    },
  };
}

/** What useRealWorker gives a suite; `worker` and the `models` folders are there from its beforeAll on. */
export interface RealWorkerSuite<Name extends string> {
  /** The suite's temp folder (this object may be kept at once; its `path` is set in beforeAll). */
  readonly tmp: { readonly path: string };
  /** A worker on the CPU, closed in afterAll. */
  readonly worker: Worker;
  /** The tiny BERT folders asked for, saved under tmp (the folder named as the key). */
  readonly models: Readonly<Record<Name, string>>;
}

/**
 * The usual setup of an integration suite, as beforeAll/afterAll hooks of the describe block that calls it: a temp
 * folder, the tiny BERTs asked for in it, and a real CPU worker (`worker` options may use the temp folder).
 */
export function useRealWorker<Name extends string = never>(
  options: { models?: Record<Name, TinyBertOptions>; prefix?: string; worker?: (tmp: string) => WorkerOptions } = {},
): RealWorkerSuite<Name> {
  const tmp = useTempDir(options.prefix);
  let worker: Worker | undefined;
  const models = {} as Record<Name, string>;
  beforeAll(async () => {
    const specs = Object.entries(options.models ?? {}) as Array<[Name, TinyBertOptions]>;
    const dirs = await Promise.all(specs.map(([name, o]) => makeTinyBert(join(tmp.path, name), o)));
    specs.forEach(([name], i) => {
      models[name] = dirs[i]!;
    });
    worker = await Worker.start({ device: "cpu", ...options.worker?.(tmp.path) });
  });
  afterAll(async () => {
    await worker?.close();
  });
  return {
    tmp,
    models,
    get worker(): Worker {
      if (!worker) throw new Error("useRealWorker: the worker starts in beforeAll; use it in a test or a hook");
      return worker;
    },
  };
}

export async function runPython(code: string, args: string[] = []): Promise<string> {
  const { python } = resolvePython();
  const r = await execa(python, ["-c", code, ...args], { env: pythonEnv() });
  return String(r.stdout);
}

const REFERENCES = fileURLToPath(new URL("../reference/", import.meta.url));

/** Runs test/reference/<file> (an independent Python reference) with the worker's interpreter; returns its stdout. */
export async function runReference(file: string, args: string[] = []): Promise<string> {
  const { python } = resolvePython();
  const r = await execa(python, [join(REFERENCES, file), ...args], { env: pythonEnv() });
  return String(r.stdout);
}

export interface WeightsComparison {
  /** The largest absolute difference over the common keys (float64). */
  maxDiff: number;
  common: number;
  onlyA: string[];
  onlyB: string[];
}

/** Compares two safetensors files (test/reference/compare_weights.py). */
export async function compareWeights(a: string, b: string): Promise<WeightsComparison> {
  return JSON.parse(await runReference("compare_weights.py", [a, b])) as WeightsComparison;
}

/** A batch's tensors as nested arrays of numbers, for a reference's JSON job. */
export function batchJson(batch: Record<string, Tensor>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(batch).map(([k, t]) => [k, t.toArray()]));
}

/** A word-level BertTokenizerFast over `vocab` (special tokens first), saved into dir (made if missing). */
export async function makeWordTokenizer(dir: string, vocab: readonly string[]): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await runPython(
    "import sys, json\nfrom transformers import BertTokenizerFast\n" +
      "open(sys.argv[1] + '/vocab.txt', 'w').write('\\n'.join(json.loads(sys.argv[2])) + '\\n')\n" +
      "BertTokenizerFast(vocab_file=sys.argv[1] + '/vocab.txt').save_pretrained(sys.argv[1])",
    [dir, JSON.stringify(vocab)],
  );
  return dir;
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
