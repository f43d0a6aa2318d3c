/**
 * Serving benchmark: a student of the demo's shape (BERT, 2 layers, hidden 384, 12 heads, vocabulary 30,522; random
 * weights, which do not change the cost) classifies texts end to end (texts → tokens → logits) in the PyTorch worker
 * (`tokenizer.encode` + `model.predict`, over IPC) and in onnxruntime-node (`textbrewer-ts/onnx`, tokenised in Node),
 * both on the CPU with the same thread count. Latency: one text per call; throughput: batches of 32. Rounds alternate
 * the two so that load on the machine hits both; each round's ratio is reported with the medians.
 *
 *   npm run bench:onnx            (one JSON object on stdout, progress on stderr)
 *
 * Environment knobs: BENCH_THREADS (default 1), BENCH_ROUNDS (default 3), BENCH_CALLS (latency calls a round,
 * default 40), BENCH_BATCHES (throughput batches a round, default 6).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { pythonEnv, resolvePython } from "../src/env/python-env.js";
import { Worker } from "../src/index.js";
import { OnnxStudent } from "../src/onnx/index.js";
import { emitResult } from "./emit.js";

const THREADS = intEnv("BENCH_THREADS", 1);
const ROUNDS = intEnv("BENCH_ROUNDS", 3);
const CALLS = intEnv("BENCH_CALLS", 40);
const BATCHES = intEnv("BENCH_BATCHES", 6);
const BATCH = 32;

function intEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: expected an integer ≥ 1, got '${v}'`);
  return n;
}

const log = (msg: string): void => void process.stderr.write(`[bench:onnx] ${msg}\n`);
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

const WORDS = ["the", "film", "was", "very", "good", "bad", "plot", "acting", "dull", "great", "story", "and", "but", "not", "a", "it"];

/** Deterministic texts of 8..31 words. */
function makeTexts(n: number): string[] {
  let s = 12345;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s;
  };
  return Array.from({ length: n }, () => Array.from({ length: 8 + (next() % 24) }, () => WORDS[next() % WORDS.length]).join(" "));
}

async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const dir = mkdtempSync(join(tmpdir(), "tbts-bench-onnx-"));
process.env.OMP_NUM_THREADS = String(THREADS);
const worker = await Worker.start({ device: "cpu" });
try {
  log(`building the student in ${dir}`);
  const vocabDir = join(dir, "vocab");
  mkdirSync(vocabDir);
  const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...WORDS];
  await execa(
    resolvePython().python,
    [
      "-c",
      "import sys, json\nfrom transformers import BertTokenizerFast\n" +
        "open(sys.argv[1] + '/vocab.txt', 'w').write('\\n'.join(json.loads(sys.argv[2])) + '\\n')\n" +
        "BertTokenizerFast(vocab_file=sys.argv[1] + '/vocab.txt').save_pretrained(sys.argv[1])",
      vocabDir,
      JSON.stringify(vocab),
    ],
    { env: pythonEnv() },
  );
  await worker.seed(0);
  const model = await worker.createModel({
    task: "sequence-classification",
    config: {
      model_type: "bert",
      vocab_size: 30522,
      hidden_size: 384,
      num_hidden_layers: 2,
      num_attention_heads: 12,
      intermediate_size: 1536,
      max_position_embeddings: 512,
      num_labels: 2,
    },
  });
  const tokenizer = await worker.loadTokenizer(vocabDir);
  const served = join(dir, "student");
  await model.save(served, { tokenizer });
  const exported = await model.exportOnnx(join(served, "model.onnx"));
  log(`exported ${exported.bytes} bytes, max |onnx - torch| on the sample ${exported.maxAbsDiff.toExponential(2)}`);
  const student = await OnnxStudent.load(served, { threads: THREADS });

  const texts = makeTexts(BATCH * BATCHES);
  const torchLogits = async (batch: string[]) => (await model.predict(await tokenizer.encode(batch))).logits!;
  const onnxLogits = (batch: string[]) => student.logits(batch);
  // warm-up, and the agreement of the two on a full batch
  const a = (await torchLogits(texts.slice(0, BATCH))).toArray() as number[][];
  const b = await onnxLogits(texts.slice(0, BATCH));
  const agreement = Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i]![j]!))));

  const rounds: Array<Record<string, number>> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const one: Record<string, number[]> = { torchLatency: [], onnxLatency: [] };
    for (let i = 0; i < CALLS; i++) {
      const text = [texts[i % texts.length]!];
      one.torchLatency!.push(await timeMs(() => torchLogits(text)));
      one.onnxLatency!.push(await timeMs(() => onnxLogits(text)));
    }
    let torchMs = 0;
    let onnxMs = 0;
    for (let i = 0; i < BATCHES; i++) {
      const batch = texts.slice(i * BATCH, (i + 1) * BATCH);
      torchMs += await timeMs(() => torchLogits(batch));
      onnxMs += await timeMs(() => onnxLogits(batch));
    }
    const row = {
      torchLatencyMs: round(median(one.torchLatency!)),
      onnxLatencyMs: round(median(one.onnxLatency!)),
      torchTextsPerSecond: round((BATCH * BATCHES) / (torchMs / 1000), 1),
      onnxTextsPerSecond: round((BATCH * BATCHES) / (onnxMs / 1000), 1),
    };
    rounds.push({
      ...row,
      latencyRatio: round(row.torchLatencyMs / row.onnxLatencyMs),
      throughputRatio: round(row.onnxTextsPerSecond / row.torchTextsPerSecond),
    });
    log(`round ${r + 1}: ${JSON.stringify(rounds.at(-1))}`);
  }
  const pick = (k: string): number => median(rounds.map((x) => x[k]!));
  emitResult("onnx", {
    what: "texts → logits, student BERT 2 layers × 384 (demo shape), CPU",
    threads: THREADS,
    cpus: cpus().length,
    batchForThroughput: BATCH,
    textsWords: "8..31",
    onnx: { bytes: exported.bytes, opset: exported.opset, maxAbsDiffOnSample: exported.maxAbsDiff, maxAbsDiffBatch32: agreement },
    median: {
      torchLatencyMs: pick("torchLatencyMs"),
      onnxLatencyMs: pick("onnxLatencyMs"),
      latencyRatio: pick("latencyRatio"),
      torchTextsPerSecond: pick("torchTextsPerSecond"),
      onnxTextsPerSecond: pick("onnxTextsPerSecond"),
      throughputRatio: pick("throughputRatio"),
    },
    rounds,
  });
  await student.release();
  await Promise.all([model.dispose(), tokenizer.dispose()]);
} finally {
  await worker.close();
  rmSync(dir, { recursive: true, force: true });
}
