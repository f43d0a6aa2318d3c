/**
 * MultiTaskDistiller: one student with two heads learns sentiment (UCI Sentiment Labelled Sentences) and named
 * entities (WikiGold) from two fine-tuned MiniLM-L6 teachers, on CPU.
 *
 *   npx tsx examples/multi-task.ts [path/to/wikigold.conll.txt] [runDir]
 *
 * 1. Data: the sentiment demo's split of the 2,979 review sentences and the NER example's split of WikiGold (by
 *    document); settings were chosen on the dev splits, the test splits are read once, at the end.
 * 2. Teachers: all-MiniLM-L6-v2 fine-tuned for each task. The demo's sentiment teacher (runs/demo/teacher) and the
 *    NER example's teacher (runs/ner/teacher) are reused when they are there and were made with the current
 *    settings; otherwise this example fine-tunes its own, with the same code, in <runDir>/teachers.
 * 3. Student: a 3-layer BERT with a sentence head (pooler + classifier) and a token head (a classifier per token),
 *    built by the Python factory examples/shared/two_heads.py (loaded with worker.loadModel({ factory })). Its
 *    encoder starts as the mean of the two teachers' layers in MULTI_TASK_SETTINGS.student.layerMap, its heads as
 *    the teachers' heads. Each micro-batch is drawn from one task (∝ number of batches^tau); the task's adaptor picks
 *    its head (`sentence_logits` or `token_logits`), and KD, hidden-state matches and the hard-label loss are taken
 *    against that task's teacher. Both training sets get new augmented copies each epoch (words masked or dropped;
 *    for NER also entity mentions swapped), which the teachers label.
 * 4. Test: sentiment accuracy and entity F1 of the teachers and of the student, then CPU throughput per task (the
 *    student answers both tasks with one 3-layer model). <runDir>/summary.json and <runDir>/report.html.
 *
 * Measured (2-core VM, 1 thread, other jobs running), test: sentiment accuracy teacher 92.3 %, student 92.0 % (99.6 %
 * kept); entity F1 teacher 68.1, student 58.4 (85.8 % kept); the student is 1.94× faster than either teacher and has
 * 17.4M parameters against 2 × 22.6M. About 17 minutes from nothing (teachers 6), 11 with both teachers reused.
 * The settings follow the NER example's choices; on dev (teachers 91.3 % / F1 56.9) the student reached 91.0 % and
 * F1 53.6 after 1,600 steps, still rising.
 *
 * Data: Sentiment Labelled Sentences (Kotzias et al., KDD 2015), CC BY 4.0; WikiGold (Balasuriya et al., 2009),
 * CC BY 4.0. The WikiGold file is not part of the package: give its path as the first argument or in WIKIGOLD_PATH
 * (default ../shared/data/wikigold/wikigold.conll.txt, relative to the current folder).
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { accuracy, argmax, type Encoded, labelTensor, makeBatches, rowLengths, seededRng, splitByDocument } from "../src/data/index.js";
import {
  BasicTrainer,
  type Batch,
  findPackagedModel,
  type IntermediateMatchInput,
  type ModelHandle,
  type ModelOutputs,
  MultiTaskDistiller,
  NO_DECAY_GROUP,
  type PackagedModel,
  type Tensor,
  type TokenizerHandle,
  Worker,
} from "../src/index.js";
import { buildReport, writeEvalResult } from "../src/report/index.js";
import {
  augmentNerSentence,
  encodeNer,
  mentionPool,
  NER_INPUTS,
  NER_LABELS,
  NER_SETTINGS,
  nerTeacher,
  packagedBase,
  pick,
  scoreNer,
} from "./ner.js";
import { augmentSentence, DEFAULT_SETTINGS as SENTIMENT_SETTINGS } from "./sentiment.js";
import { median } from "./shared/median.js";
import { MINILM_L6 } from "./shared/minilm.js";
import { pruneCheckpoints } from "./shared/prune.js";
import { loadSentiment, SENTIMENT_CREDIT, type SentimentExample, splitSentiment } from "./shared/sentiment.js";
import { fingerprintOf, readTeacherMarker, writeTeacherMarker } from "./shared/teacher-marker.js";
import { readWikiGold, WIKIGOLD_CREDIT } from "./shared/wikigold.js";

export interface MultiTaskSettings {
  seed: number;
  student: {
    layers: number;
    /** Student layer i starts as the mean of the two teachers' layer layerMap[i]. */
    layerMap: number[];
    /** Micro-batches in all (each from one task). */
    steps: number;
    /** Task k is drawn with probability ∝ (batches of k per epoch)^tau. */
    tau: number;
    lr: number;
    warmupRatio: number;
    temperature: number;
    hardLabelWeight: number;
    /** Hidden-state matches, for both tasks (student layer ↔ teacher layer; 0 = embeddings). */
    matches: IntermediateMatchInput[];
    frozen?: string;
    /** Augmented copies of each training set added to each of its epochs (new ones each epoch), labelled by the teacher. */
    augmentedCopies: { sentiment: number; ner: number };
    /** Checkpoints (each scored on both dev sets) in all. */
    checkpoints: number;
  };
  timingRepeats: number;
}

export const MULTI_TASK_SETTINGS: MultiTaskSettings = {
  seed: 42,
  student: {
    layers: 3,
    layerMap: [1, 3, 5],
    steps: 1600,
    tau: 1,
    lr: 2e-4,
    warmupRatio: 0.1,
    temperature: 1,
    hardLabelWeight: 1,
    matches: [
      { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
      { layerT: 2, layerS: 1, feature: "hidden", loss: "hidden_mse", weight: 1 },
      { layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 },
      { layerT: 6, layerS: 3, feature: "hidden", loss: "hidden_mse", weight: 1 },
    ],
    frozen: "word_embeddings",
    augmentedCopies: { sentiment: 1, ner: 2 },
    checkpoints: 8,
  },
  timingRepeats: 3,
};

const TWO_HEADS = fileURLToPath(new URL("./shared/two_heads.py", import.meta.url));
const FACTORY = `${TWO_HEADS}:build`;
const SENTIMENT_DEMO_TEACHER = "runs/demo/teacher";
const NER_EXAMPLE_TEACHER = "runs/ner/teacher";

/** Sentiment sentences tokenized as the demo does, with their labels. */
async function encodeSentiment(tokenizer: TokenizerHandle, examples: readonly SentimentExample[], maxLength: number): Promise<Encoded> {
  const { token_type_ids: _unused, ...enc } = await tokenizer.encode(
    examples.map((e) => e.text),
    { maxLength, padding: "longest", truncation: true },
  );
  return { ...enc, labels: labelTensor(examples.map((e) => e.label)) };
}

async function sentimentAccuracy(model: ModelHandle, batches: readonly Encoded[], logitsOf: (o: ModelOutputs) => Tensor): Promise<number> {
  const predicted: number[] = [];
  const gold: number[] = [];
  for (const { labels, ...inputs } of batches) {
    predicted.push(...argmax(logitsOf(await model.predict(inputs))));
    gold.push(...labels!.toFlatArray().map(Number));
  }
  return accuracy(predicted, gold);
}

interface SentimentTeacher {
  teacher: ModelHandle;
  dir: string;
  devAccuracy: number;
  reused: string | null;
}

/**
 * The sentiment teacher: the demo's (runs/demo/teacher) when its teacher.json says it was fine-tuned from the packaged
 * MiniLM with the demo's default settings on this training set; otherwise one fine-tuned here the same way (BasicTrainer,
 * the demo's teacher settings, best dev accuracy kept) into `ownDir`, itself reused by the next run.
 */
async function sentimentTeacher(
  worker: Worker,
  base: PackagedModel,
  tokenizer: TokenizerHandle,
  split: { train: SentimentExample[]; dev: SentimentExample[] },
  ownDir: string,
  log: (line: string) => void,
): Promise<SentimentTeacher> {
  const s = SENTIMENT_SETTINGS;
  const devBatches = makeBatches(await encodeSentiment(tokenizer, split.dev, s.maxLength), { batchSize: 64 });
  // the demo's fingerprint: its teacher source, seed, teacher settings, tokenization, batch size and training set
  const fingerprint = (teacherSource: string) =>
    fingerprintOf({
      teacherSource,
      seed: s.seed,
      teacher: s.teacher,
      maxLength: s.maxLength,
      batchSize: s.batchSize,
      train: split.train.map((e) => e.id),
    });
  const candidates: Array<[string, string | undefined]> = [
    [SENTIMENT_DEMO_TEACHER, readTeacherMarker(SENTIMENT_DEMO_TEACHER)?.teacherSource],
    [ownDir, ownSource(base)],
  ];
  for (const [dir, source] of candidates) {
    // (the demo falls back to a teacher trained from scratch, with another tokenizer, when MiniLM cannot be used)
    const marker = source?.startsWith("all-MiniLM-L6-v2") ? readTeacherMarker(dir, fingerprint(source)) : null;
    if (!marker) continue;
    const teacher = await worker.loadModel({ path: join(dir, marker.checkpoint), task: "sequence-classification" });
    return {
      teacher,
      dir: join(dir, marker.checkpoint),
      devAccuracy: await sentimentAccuracy(teacher, devBatches, (o) => o.logits!),
      reused: dir,
    };
  }
  rmSync(ownDir, { recursive: true, force: true });
  mkdirSync(ownDir, { recursive: true });
  const trainEnc = await encodeSentiment(tokenizer, split.train, s.maxLength);
  const lengths = rowLengths(trainEnc.attention_mask!);
  await worker.seed(s.seed);
  const model = await worker.loadModel({ path: base.path, task: "sequence-classification", config: { num_labels: 2 } });
  if (s.teacher.frozen) await model.setTrainable(s.teacher.frozen, false);
  const evals: Array<{ step: number; dir: string; accuracy: number }> = [];
  await new BasicTrainer({
    trainConfig: { outputDir: ownDir, device: "cpu", seed: s.seed },
    model,
    adaptor: (_b: any, o: any) => ({ losses: o.loss }),
  }).train({
    optimizer: { type: "AdamW", lr: s.teacher.lr, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
    scheduler: { type: "linear", warmupRatio: s.teacher.warmupRatio },
    data: (epoch: number): Batch[] => makeBatches(trainEnc, { batchSize: s.batchSize, rng: seededRng(s.seed * 1000 + epoch), lengths }),
    numEpochs: s.teacher.epochs,
    maxGradNorm: 1,
    callback: async ({ step, student, checkpointDir }) => {
      const acc = await sentimentAccuracy(student, devBatches, (o) => o.logits!);
      writeEvalResult(checkpointDir, step, { accuracy: acc });
      evals.push({ step, dir: checkpointDir, accuracy: acc });
      log(`        step ${step}: dev accuracy ${(100 * acc).toFixed(1)}%`);
    },
  });
  await model.dispose();
  const best = evals.reduce((a, e) => (e.accuracy >= a.accuracy ? e : a));
  pruneCheckpoints(ownDir, best.dir);
  writeTeacherMarker(ownDir, {
    fingerprint: fingerprint(ownSource(base)),
    checkpoint: relative(ownDir, best.dir),
    devAccuracy: best.accuracy,
    step: best.step,
    teacherSource: ownSource(base),
  });
  const teacher = await worker.loadModel({ path: best.dir, task: "sequence-classification" });
  return { teacher, dir: best.dir, devAccuracy: best.accuracy, reused: null };
}

function ownSource(base: PackagedModel): string {
  return `all-MiniLM-L6-v2 from PyPI ${base.distribution} ${base.version}, fine-tuned for sentiment by examples/multi-task.ts`;
}

export interface MultiTaskOptions {
  settings?: MultiTaskSettings;
  log?: (line: string) => void;
  /** false: stop after the student's dev scores (for choosing settings; the test splits are not read). */
  test?: boolean;
}

export async function runMultiTask(dataPath: string, runDir: string, options: MultiTaskOptions = {}) {
  const s = options.settings ?? MULTI_TASK_SETTINGS;
  const ss = s.student;
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const stage = (n: number, text: string) => log(`[${n}/5 ${((performance.now() - started) / 1000).toFixed(0)}s] ${text}`);
  const sent = { ...SENTIMENT_SETTINGS, split: splitSentiment(loadSentiment(), { seed: SENTIMENT_SETTINGS.seed }) };
  if (!existsSync(dataPath)) throw new Error(`WikiGold not found at ${dataPath}: pass its path as the first argument or set WIKIGOLD_PATH`);
  const ner = { ...NER_SETTINGS, split: splitByDocument(readWikiGold(dataPath), { seed: NER_SETTINGS.seed }) };
  stage(
    1,
    `data: sentiment train ${sent.split.train.length}, dev ${sent.split.dev.length}, test ${sent.split.test.length}; ` +
      `WikiGold train ${ner.split.train.length}, dev ${ner.split.dev.length}, test ${ner.split.test.length} sentences`,
  );
  mkdirSync(runDir, { recursive: true });
  for (const name of readdirSync(runDir)) {
    // a previous run's student and results (teachers stay)
    if (/^gs\d+$/.test(name) || ["latest", "metrics.jsonl", "summary.json", "report.html"].includes(name))
      rmSync(join(runDir, name), { recursive: true, force: true });
  }

  await using worker = await Worker.start({ device: "cpu" });
  const found = await findPackagedModel(worker, MINILM_L6);
  const tokenizer = await worker.loadTokenizer(found.path);

  // Teachers -------------------------------------------------------------------------------------------------------
  stage(
    2,
    `teachers: all-MiniLM-L6-v2 fine-tuned for each task (reused from ${SENTIMENT_DEMO_TEACHER} and ${NER_EXAMPLE_TEACHER} when they fit)`,
  );
  const st = await sentimentTeacher(worker, found, tokenizer, sent.split, join(runDir, "teachers", "sentiment"), log);
  log(
    `        sentiment: ${st.reused ? `reused ${relative(process.cwd(), st.dir)}` : "fine-tuned"} (dev accuracy ${(100 * st.devAccuracy).toFixed(1)}%)`,
  );
  const nt = await nerTeacher({
    worker,
    base: packagedBase(found),
    tokenizer,
    ...ner.split,
    teacherDir: join(runDir, "teachers", "ner"),
    reuseFrom: [NER_EXAMPLE_TEACHER],
    log,
  });
  log(`        NER: ${nt.reused ? `reused ${relative(process.cwd(), nt.dir)}` : "fine-tuned"} (dev F1 ${(100 * nt.devF1).toFixed(1)})`);

  // Data for the student -------------------------------------------------------------------------------------------
  const sentDev = makeBatches(await encodeSentiment(tokenizer, sent.split.dev, sent.maxLength), { batchSize: 64 });
  const nerDev = await encodeNer(tokenizer, ner.split.dev, ner.maxLength);
  const pool = mentionPool(ner.split.train);
  const epochData = async (task: "sentiment" | "ner", epoch: number): Promise<Encoded> => {
    const rng = seededRng(s.seed * 7919 + epoch);
    if (task === "sentiment") {
      const train = sent.split.train;
      const extra = Array.from({ length: ss.augmentedCopies.sentiment }, () =>
        train.map((x) => ({ ...x, text: augmentSentence(x.text, rng) })),
      ).flat();
      return encodeSentiment(tokenizer, [...train, ...extra], sent.maxLength);
    }
    const train = ner.split.train;
    const extra = Array.from({ length: ss.augmentedCopies.ner }, () => train.map((x) => augmentNerSentence(x, rng, pool))).flat();
    return pick(await encodeNer(tokenizer, [...train, ...extra], ner.maxLength), [...NER_INPUTS, "labels"]);
  };
  const batchSizes = { sentiment: sent.batchSize, ner: ner.batchSize };
  // Each task's epochs (its training set and new augmented copies) are tokenized up front, as many as the steps need.
  const perEpoch = {
    sentiment: Math.ceil((sent.split.train.length * (1 + ss.augmentedCopies.sentiment)) / sent.batchSize),
    ner: Math.ceil((ner.split.train.length * (1 + ss.augmentedCopies.ner)) / ner.batchSize),
  };
  const total = perEpoch.sentiment ** ss.tau + perEpoch.ner ** ss.tau;
  const epochsNeeded = {
    sentiment: Math.ceil((ss.steps * perEpoch.sentiment ** ss.tau) / total / perEpoch.sentiment) + 1,
    ner: Math.ceil((ss.steps * perEpoch.ner ** ss.tau) / total / perEpoch.ner) + 1,
  };
  const prepared: Record<"sentiment" | "ner", Encoded[]> = { sentiment: [], ner: [] };
  for (const task of ["sentiment", "ner"] as const)
    for (let e = 0; e < (ss.augmentedCopies[task] ? epochsNeeded[task] : 1); e++) prepared[task].push(await epochData(task, e));
  const batches =
    (task: "sentiment" | "ner") =>
    (epoch: number): Batch[] => {
      const enc = prepared[task][epoch % prepared[task].length]!;
      return makeBatches(enc, {
        batchSize: batchSizes[task],
        rng: seededRng(s.seed * 1000 + epoch),
        lengths: rowLengths(enc.attention_mask!),
      });
    };

  // Student ------------------------------------------------------------------------------------------------------
  const factoryArgs = { base: found.path, layer_map: ss.layerMap, sentence_labels: 2, token_labels: NER_LABELS.length };
  stage(
    3,
    `student: ${ss.layers}-layer BERT with a sentence head and a token head (${relative(process.cwd(), TWO_HEADS)}), layers from the teachers' [${ss.layerMap.join(", ")}]; ` +
      `MultiTaskDistiller, ${ss.steps} steps (sentiment ${perEpoch.sentiment}, NER ${perEpoch.ner} batches per epoch, tau ${ss.tau}), KD at T=${ss.temperature}, hard labels ×${ss.hardLabelWeight}` +
      (ss.matches.length ? `, ${ss.matches.length} hidden-state matches` : ""),
  );
  await worker.seed(s.seed);
  const student0 = await worker.loadModel({
    factory: FACTORY,
    factoryArgs: { ...factoryArgs, encoder_from: [nt.dir, st.dir], sentence_head_from: st.dir, token_head_from: nt.dir },
  });
  if (ss.frozen) await student0.setTrainable(ss.frozen, false);
  const hidden = (b: any, o: any) => ({ hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });
  const evals: Array<{ step: number; dir: string; accuracy: number; f1: number; score: number }> = [];
  await new MultiTaskDistiller({
    trainConfig: { outputDir: runDir, device: "cpu", seed: s.seed, ckptSteps: Math.ceil(ss.steps / ss.checkpoints) },
    distillConfig: { temperature: ss.temperature, hardLabelWeight: ss.hardLabelWeight, intermediateMatches: ss.matches },
    teachers: { sentiment: st.teacher, ner: nt.teacher },
    student: student0,
    adaptorT: {
      sentiment: (b: any, o: any) => ({ ...hidden(b, o), logits: o.logits }),
      ner: (b: any, o: any) => ({ ...hidden(b, o), logits: o.logits, logits_mask: b.attention_mask }),
    },
    adaptorS: {
      sentiment: (b: any, o: any) => ({ ...hidden(b, o), logits: o.sentence_logits }),
      ner: (b: any, o: any) => ({ ...hidden(b, o), logits: o.token_logits, logits_mask: b.attention_mask }),
    },
  }).train({
    optimizer: { type: "AdamW", lr: ss.lr, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
    scheduler: { type: "linear", warmupRatio: ss.warmupRatio },
    data: { sentiment: batches("sentiment"), ner: batches("ner") },
    numSteps: ss.steps,
    tau: ss.tau,
    maxGradNorm: 1,
    callback: async ({ step, student, checkpointDir }) => {
      const acc = await sentimentAccuracy(student, sentDev, (o) => o.sentence_logits as Tensor);
      const f1 = (await scoreNer(student, nerDev, ner.split.dev, (o) => o.token_logits as Tensor)).f1;
      // checkpoints are ranked by the mean share of the teachers' dev scores
      const score = (acc / st.devAccuracy + f1 / nt.devF1) / 2;
      writeEvalResult(checkpointDir, step, { accuracy: acc, f1, retained: score });
      evals.push({ step, dir: checkpointDir, accuracy: acc, f1, score });
      log(
        `        step ${step}: dev accuracy ${(100 * acc).toFixed(1)}%, dev F1 ${(100 * f1).toFixed(1)} (${(100 * score).toFixed(1)}% of the teachers' on average)`,
      );
    },
  });
  await student0.dispose();
  const best = evals.reduce((a, e) => (e.score >= a.score ? e : a));
  pruneCheckpoints(runDir, best.dir);
  log(`        kept step ${best.step}`);
  if (options.test === false) {
    await Promise.all([st.teacher.dispose(), nt.teacher.dispose()]);
    return { dev: { teacher: { accuracy: st.devAccuracy, f1: nt.devF1 }, student: best }, seconds: (performance.now() - started) / 1000 };
  }
  const student = await worker.loadModel({ factory: FACTORY, factoryArgs, path: join(best.dir, "model", "model.safetensors") });

  // Test once, time each task ----------------------------------------------------------------------------------------
  stage(4, "test: sentiment accuracy, entity F1, CPU throughput per task");
  const sentTestEnc = await encodeSentiment(tokenizer, sent.split.test, sent.maxLength);
  const sentTest = makeBatches(sentTestEnc, { batchSize: 32 });
  const nerTestEnc = await encodeNer(tokenizer, ner.split.test, ner.maxLength);
  const nerTest = makeBatches(pick(nerTestEnc, NER_INPUTS), { batchSize: 32 });
  const results = {
    sentiment: {
      teacher: await sentimentAccuracy(st.teacher, sentTest, (o) => o.logits!),
      student: await sentimentAccuracy(student, sentTest, (o) => o.sentence_logits as Tensor),
    },
    ner: {
      teacher: (await scoreNer(nt.teacher, nerTestEnc, ner.split.test)).f1,
      student: (await scoreNer(student, nerTestEnc, ner.split.test, (o) => o.token_logits as Tensor)).f1,
    },
  };
  // Throughput: the task's teacher and the student take turns batch by batch, after a warm-up pass.
  const throughput = async (teacher: ModelHandle, inputs: Encoded[], sentences: number) => {
    const plain = inputs.map(({ labels: _l, ...rest }) => rest);
    for (const m of [teacher, student]) for (const b of plain) await m.predict(b);
    const times = [[] as number[], [] as number[]];
    for (let r = 0; r < s.timingRepeats; r++) {
      for (const b of plain) {
        for (const [k, m] of [teacher, student].entries()) {
          const t0 = performance.now();
          await m.predict(b);
          times[k]!.push(performance.now() - t0);
        }
      }
    }
    const rate = (t: number[]) => (sentences * s.timingRepeats) / (t.reduce((a, b) => a + b, 0) / 1000);
    return {
      teacher: rate(times[0]!),
      student: rate(times[1]!),
      teacherMsPerBatch: median(times[0]!),
      studentMsPerBatch: median(times[1]!),
    };
  };
  const speed = {
    sentiment: await throughput(st.teacher, sentTest, sent.split.test.length),
    ner: await throughput(nt.teacher, nerTest, ner.split.test.length),
  };
  const parameters = {
    sentimentTeacher: await st.teacher.numParameters(),
    nerTeacher: await nt.teacher.numParameters(),
    student: await student.numParameters(),
  };
  const summary = {
    test: results,
    dev: { teacher: { sentimentAccuracy: st.devAccuracy, nerF1: nt.devF1 }, student: { sentimentAccuracy: best.accuracy, nerF1: best.f1 } },
    retained: { sentiment: results.sentiment.student / results.sentiment.teacher, ner: results.ner.student / results.ner.teacher },
    speed,
    speedup: { sentiment: speed.sentiment.student / speed.sentiment.teacher, ner: speed.ner.student / speed.ner.teacher },
    parameters,
    seconds: (performance.now() - started) / 1000,
    teachers: {
      sentiment: relative(runDir, st.dir),
      ner: relative(runDir, nt.dir),
      sentimentReused: st.reused !== null,
      nerReused: nt.reused,
    },
    studentCheckpoint: relative(runDir, best.dir),
    datasets: { sentiment: SENTIMENT_CREDIT, ner: WIKIGOLD_CREDIT },
    settings: s,
    timing: { batchSize: 32, repeats: s.timingRepeats, threads: worker.info.threads, device: worker.info.device },
  };
  writeFileSync(join(runDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  await Promise.all([st.teacher.dispose(), nt.teacher.dispose(), student.dispose()]);
  const report = await buildReport(runDir, {
    title: "textbrewer-ts: multi-task (sentiment + WikiGold NER), two MiniLM-L6 teachers → one 3-layer student",
  });
  stage(5, `wrote ${relative(process.cwd(), join(runDir, "summary.json"))} and ${relative(process.cwd(), report)}`);
  const pct = (x: number) => `${(100 * x).toFixed(1)}`;
  log(
    `sentiment  test accuracy: teacher ${pct(results.sentiment.teacher)}%, student ${pct(results.sentiment.student)}% (${pct(summary.retained.sentiment)}% kept), speed-up ${summary.speedup.sentiment.toFixed(2)}×`,
  );
  log(
    `NER        test entity F1: teacher ${pct(results.ner.teacher)}, student ${pct(results.ner.student)} (${pct(summary.retained.ner)}% kept), speed-up ${summary.speedup.ner.toFixed(2)}×`,
  );
  log(
    `parameters: teachers ${(parameters.sentimentTeacher / 1e6).toFixed(1)}M + ${(parameters.nerTeacher / 1e6).toFixed(1)}M, student ${(parameters.student / 1e6).toFixed(1)}M for both; ` +
      `${worker.info.threads} thread${worker.info.threads > 1 ? "s" : ""}, ${summary.seconds.toFixed(0)} s in all`,
  );
  return summary;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const dataPath = process.argv[2] ?? process.env.WIKIGOLD_PATH ?? join("..", "shared", "data", "wikigold", "wikigold.conll.txt");
  runMultiTask(resolve(dataPath), resolve(process.argv[3] ?? "runs/multi-task")).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  });
}
