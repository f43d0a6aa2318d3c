/**
 * Distilling a causal language model on Tiny Shakespeare, three ways with the same budget.
 *
 * A byte-level BPE tokenizer (Hugging Face `tokenizers`) and a GPT-2-style teacher are trained from scratch on the
 * first 90 % of the text (both kept in the run folder and reused by the next run with the same settings); then a
 * 2-layer student is trained for the same number of steps on the same batches:
 *   (a) alone, on the text (next-token cross-entropy);
 *   (b) offline KD: forward KL to the teacher, cached before training as n token ids drawn per position from its
 *       distribution with their log-probabilities (an unbiased estimate of the full KL, at a top-n cache's bytes);
 *   (c) on-policy GKD: with probability λ per batch the student continues each row's prompt itself and learns the
 *       teacher's distribution over its own samples (forward KL on those tokens, the data's on the others).
 * Reported: validation perplexity on the last 10 % of the text, parameters, training tokens/s, the cache's bytes per
 * token, and one sample per model from the same prompt.
 *
 *   npx tsx examples/llm-distill.ts [path/to/input.txt] [runDir]
 *
 * The text defaults to TINY_SHAKESPEARE_PATH or ../shared/data/tinyshakespeare/input.txt (relative to the current
 * folder); the run folder to runs/llm-distill. Sizes: DEMO_SIZES (env LLM_DEMO_STEPS, LLM_DEMO_TEACHER_STEPS).
 */
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { seededRng } from "../src/data/index.js";
import { BasicTrainer, DistillCache, type ModelHandle, Tensor, Worker } from "../src/index.js";
import { CAUSAL_LM_ADAPTOR, CausalLMDistiller, evaluateLm, type LmEvalResult } from "../src/llm/index.js";
import { fingerprintOf, readTeacherMarker, writeTeacherMarker } from "./shared/teacher-marker.js";

const TOKENIZER_PY = fileURLToPath(new URL("./shared/bpe_tokenizer.py", import.meta.url));
export const DEFAULT_TEXT_PATH = join("..", "shared", "data", "tinyshakespeare", "input.txt");

export interface GptSize {
  layers: number;
  hidden: number;
  heads: number;
}

export interface LlmDemoOptions {
  textPath: string;
  runDir: string;
  /** Use only the first `chars` characters of the text (the tests' toy size); default all. */
  chars?: number;
  vocab: number;
  seqLen: number;
  batchSize: number;
  teacher: GptSize & { steps: number; lr: number };
  student: GptSize;
  /** Optimizer steps of each student run. */
  steps: number;
  lr: number;
  /** (b): teacher draws per token kept in the cache. */
  samples: number;
  lambda: number;
  promptLength: number;
  /** Validation batches for perplexity (default: all). */
  evalBatches?: number;
  sampleTokens: number;
  seed: number;
  log?: (line: string) => void;
}

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);

/** Sized for about 10 minutes on two shared, busy CPU cores once the teacher exists (its first training about as much). */
export const DEMO_SIZES: Omit<LlmDemoOptions, "textPath" | "runDir"> = {
  vocab: 4096,
  seqLen: 32,
  batchSize: 8,
  teacher: { layers: 4, hidden: 128, heads: 4, steps: env("LLM_DEMO_TEACHER_STEPS", 250), lr: 3e-3 },
  student: { layers: 2, hidden: 64, heads: 2 },
  steps: env("LLM_DEMO_STEPS", 120),
  lr: 3e-3,
  samples: 32,
  lambda: 0.5,
  promptLength: 8,
  evalBatches: 24,
  sampleTokens: 24,
  seed: 0,
};

export interface ModelReport {
  name: string;
  parameters: number;
  perplexity: number;
  tokensPerSecond: number | null;
  seconds: number | null;
  sample: string;
}

export interface LlmDemoResult {
  models: ModelReport[];
  cacheBytesPerToken: number;
  cacheFillSeconds: number;
  /** The teacher's mean probability mass in its top-n (n = samples) on the first 8 training batches. */
  teacherTopMass: number | null;
  trainTokens: number;
  validTokens: number;
}

function gpt2Config(size: GptSize, o: LlmDemoOptions): Record<string, unknown> {
  return {
    model_type: "gpt2",
    vocab_size: o.vocab,
    n_positions: o.seqLen,
    n_embd: size.hidden,
    n_layer: size.layers,
    n_head: size.heads,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
  };
}

/** Non-overlapping windows of seqLen tokens, in batches; every token is a target (labels = input_ids). */
function windows(ids: bigint[], o: LlmDemoOptions, shuffleSeed: number | null): Array<Record<string, Tensor>> {
  const rows: bigint[][] = [];
  for (let s = 0; s + o.seqLen <= ids.length; s += o.seqLen) rows.push(ids.slice(s, s + o.seqLen));
  if (shuffleSeed !== null) {
    const rng = seededRng(shuffleSeed);
    for (let i = rows.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
  }
  const batches: Array<Record<string, Tensor>> = [];
  for (let b = 0; b + o.batchSize <= rows.length; b += o.batchSize) {
    const part = rows.slice(b, b + o.batchSize);
    const ids2 = Tensor.from(part, "int64");
    batches.push({
      input_ids: ids2,
      attention_mask: Tensor.from(
        part.map((r) => r.map(() => 1n)),
        "int64",
      ),
      labels: ids2,
    });
  }
  return batches;
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, name.name);
    total += name.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return total;
}

/** Runs the whole demo; returns the figures (also written to <runDir>/summary.json). */
export async function runLlmDistill(o: LlmDemoOptions): Promise<LlmDemoResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const runDir = resolve(o.runDir);
  mkdirSync(runDir, { recursive: true });
  await using worker = await Worker.start({ device: "cpu" });
  const textLength = o.chars ?? statSync(o.textPath).size;
  const split = Math.floor(textLength * 0.9);

  // the tokenizer and the teacher are reused when made with the same settings from the same text
  const teacherKey = {
    text: resolve(o.textPath),
    textBytes: statSync(o.textPath).size,
    chars: textLength,
    vocab: o.vocab,
    seqLen: o.seqLen,
    batchSize: o.batchSize,
    teacher: o.teacher,
    seed: o.seed,
  };
  const fingerprint = fingerprintOf(teacherKey);
  const tokenizerDir = join(runDir, `tokenizer-${fingerprint.slice(0, 12)}`);
  if (!existsSync(join(tokenizerDir, "tokenizer.json"))) {
    log(`training a ${o.vocab}-token byte-level BPE tokenizer on characters [0, ${split})…`);
    await worker.runPython(`${TOKENIZER_PY}:train`, {
      text_path: o.textPath,
      start: 0,
      end: split,
      out_dir: tokenizerDir,
      vocab_size: o.vocab,
    });
  }
  const encode = async (start: number, end: number): Promise<bigint[]> => {
    const t = (await worker.runPython(`${TOKENIZER_PY}:encode`, {
      tokenizer_dir: tokenizerDir,
      text_path: o.textPath,
      start,
      end,
    })) as Tensor;
    return Array.from(t.data as BigInt64Array);
  };
  const trainIds = await encode(0, split);
  const validIds = await encode(split, textLength);
  const train = windows(trainIds, o, o.seed);
  const valid = windows(validIds, o, null).slice(0, o.evalBatches ?? Infinity);
  if (!train.length || !valid.length) throw new Error(`text: too short for batches of ${o.batchSize} × ${o.seqLen} tokens`);
  const decode = async (ids: number[]): Promise<string> =>
    (await worker.runPython(`${TOKENIZER_PY}:decode`, { tokenizer_dir: tokenizerDir, ids })) as string;
  const prompt = Tensor.from([validIds.slice(0, o.promptLength)], "int64");
  const evaluate = (m: ModelHandle): Promise<LmEvalResult> =>
    evaluateLm(m, { heldOut: valid, prompts: prompt, maxNewTokens: o.sampleTokens, decode, seed: o.seed });
  log(`${trainIds.length} training tokens (${train.length} batches), ${validIds.length} validation tokens (${valid.length} batches used)`);

  const teacherDir = join(runDir, "teacher");
  let marker = readTeacherMarker(teacherDir, fingerprint);
  if (!marker) {
    log(`training the teacher (${o.teacher.layers} layers, hidden ${o.teacher.hidden}) for ${o.teacher.steps} steps…`);
    await worker.seed(o.seed);
    const t = await worker.createModel({ config: gpt2Config(o.teacher, o), task: "causal-lm" });
    const steps = o.teacher.steps;
    await new BasicTrainer({
      trainConfig: { outputDir: join(teacherDir, "run"), ckptSteps: steps, seed: o.seed },
      model: t,
      adaptor: (_b, out) => ({ losses: out.loss }),
    }).train({
      optimizer: { type: "AdamW", lr: o.teacher.lr },
      scheduler: { type: "cosine", warmupRatio: 0.05 },
      data: train,
      numSteps: steps,
    });
    marker = { fingerprint, checkpoint: join("run", `gs${steps}`), step: steps };
    writeTeacherMarker(teacherDir, marker);
    await t.dispose();
  } else {
    log(`reusing the teacher in ${join(teacherDir, marker.checkpoint)}`);
  }
  const teacher = await worker.loadModel({ path: join(teacherDir, marker.checkpoint, "model"), task: "causal-lm" });

  const reports: ModelReport[] = [];
  const report = async (name: string, m: ModelHandle, seconds: number | null, tokens: number): Promise<void> => {
    const r = await evaluate(m);
    const entry: ModelReport = {
      name,
      parameters: await m.numParameters(),
      perplexity: r.perplexity,
      tokensPerSecond: seconds ? tokens / seconds : null,
      seconds,
      sample: r.samples[0] ?? "",
    };
    reports.push(entry);
    log(
      `${name}: validation perplexity ${r.perplexity.toFixed(2)}, ${entry.parameters.toLocaleString()} parameters${seconds ? `, ${(tokens / seconds).toFixed(0)} tokens/s` : ""}`,
    );
  };
  await report("teacher", teacher, null, 0);

  const trainTokens = o.steps * o.batchSize * o.seqLen;
  const budget = {
    optimizer: { type: "AdamW" as const, lr: o.lr },
    scheduler: { type: "cosine" as const, warmupRatio: 0.05 },
    data: train,
    numSteps: o.steps,
  };
  const student = async (): Promise<ModelHandle> => {
    await worker.seed(o.seed + 1); // the same initial student for every run
    return worker.createModel({ config: gpt2Config(o.student, o), task: "causal-lm" });
  };
  const timed = async (run: () => Promise<unknown>): Promise<number> => {
    const t0 = performance.now();
    await run();
    return (performance.now() - t0) / 1000;
  };
  const trainConfig = (name: string) => ({ outputDir: join(runDir, name), ckptSteps: o.steps, seed: o.seed });

  log(`(a) the student alone, ${o.steps} steps…`);
  const alone = await student();
  const aloneSeconds = await timed(() =>
    new BasicTrainer({ trainConfig: trainConfig("student-alone"), model: alone, adaptor: (_b, out) => ({ losses: out.loss }) }).train(
      budget,
    ),
  );
  await report("(a) student alone", alone, aloneSeconds, trainTokens);
  await alone.dispose();

  log(`(b) offline KD from ${o.samples} teacher draws per token, cached first…`);
  const cacheDir = join(runDir, `cache-samples${o.samples}`);
  // the teacher is flat (ppl ≈ 400 over 4,096 tokens): its top-k holds only part of its mass, and the true next token
  // is often outside it, where a truncated target ("bucket" or "uniform" tail) tells the student nothing about it. The
  // draws keep the whole distribution in expectation: (1/n)·Σ (log p(j_i) − log q(j_i)) is unbiased for KL(p ‖ q).
  const cache = await DistillCache.open({
    teachers: teacher,
    adaptorT: CAUSAL_LM_ADAPTOR,
    temperature: 1,
    samples: o.samples,
    dir: cacheDir,
    rebuild: true,
  });
  const usedBatches = train.slice(0, Math.min(train.length, o.steps));
  const [fidelity] = await cache.fidelity({ data: usedBatches, topK: [o.samples], samples: [o.samples], batches: 8 });
  if (fidelity?.topK[0])
    log(`the teacher's top-${o.samples} holds ${(100 * fidelity.topK[0].keptMass).toFixed(1)} % of its probability (first 8 batches)`);
  const fillSeconds = await timed(() => cache.fill({ data: usedBatches }));
  await cache.flush();
  const cacheBytesPerToken = folderBytes(cacheDir) / (usedBatches.length * o.batchSize * o.seqLen);
  log(`cache: ${cacheBytesPerToken.toFixed(1)} bytes per token, filled in ${fillSeconds.toFixed(1)} s`);
  const offline = await student();
  const offlineSeconds = await timed(() =>
    new CausalLMDistiller({
      trainConfig: trainConfig("student-offline-kd"),
      distillConfig: { kdLossType: "token_kl", temperature: 1 },
      teacher,
      student: offline,
    }).train({
      ...budget,
      teacherCache: cache,
    }),
  );
  await cache.close();
  await report(`(b) offline KD, ${o.samples} teacher draws per token`, offline, offlineSeconds, trainTokens);
  await offline.dispose();

  log(`(c) on-policy GKD, λ = ${o.lambda}, prompts of ${o.promptLength} tokens…`);
  const onPolicy = await student();
  const onPolicySeconds = await timed(() =>
    new CausalLMDistiller({
      trainConfig: trainConfig("student-on-policy"),
      distillConfig: { kdLossType: "token_kl", temperature: 1 },
      teacher,
      student: onPolicy,
      onPolicy: { lmbda: o.lambda, promptLength: o.promptLength, temperature: 1 },
    }).train(budget),
  );
  await report(`(c) on-policy GKD, λ = ${o.lambda}`, onPolicy, onPolicySeconds, trainTokens);
  await onPolicy.dispose();

  const result: LlmDemoResult = {
    models: reports,
    cacheBytesPerToken,
    cacheFillSeconds: fillSeconds,
    teacherTopMass: fidelity?.topK[0]?.keptMass ?? null,
    trainTokens,
    validTokens: valid.length * o.batchSize * o.seqLen,
  };
  writeFileSync(join(runDir, "summary.json"), `${JSON.stringify({ options: { ...o, log: undefined }, ...result }, null, 2)}\n`);
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const textPath = resolve(process.argv[2] ?? process.env.TINY_SHAKESPEARE_PATH ?? DEFAULT_TEXT_PATH);
  const runDir = process.argv[3] ?? "runs/llm-distill";
  const t0 = performance.now();
  const r = await runLlmDistill({ ...DEMO_SIZES, textPath, runDir });
  console.log("\n| model | parameters | validation perplexity | training tokens/s |\n|---|---|---|---|");
  for (const m of r.models) {
    console.log(
      `| ${m.name} | ${m.parameters.toLocaleString("en-US")} | ${m.perplexity.toFixed(2)} | ${m.tokensPerSecond ? m.tokensPerSecond.toFixed(0) : "–"} |`,
    );
  }
  console.log(`\ncache: ${r.cacheBytesPerToken.toFixed(1)} bytes per token (filled in ${r.cacheFillSeconds.toFixed(1)} s)`);
  for (const m of r.models) console.log(`\n${m.name}:\n${m.sample}`);
  console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
