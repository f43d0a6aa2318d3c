/**
 * Runs a checked run file through the public API, as a script would: start a worker, load the teacher, build the
 * student, tokenise the data, distil, score each checkpoint. The run folder gets `run-config.json` (the resolved run:
 * every default filled in, paths absolute) before training starts, and `run-summary.json` at the end.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Adaptor, AdaptorFn } from "../adaptor/index.js";
import { makeBatches, rowLengths } from "../data/collate.js";
import { accuracy, argmax } from "../data/metrics.js";
import { seededRng } from "../data/rng.js";
import { BasicDistiller } from "../distillers/basic-distiller.js";
import { GeneralDistiller } from "../distillers/general-distiller.js";
import { writeEvalResult } from "../report/eval-file.js";
import type { Tensor } from "../tensor/tensor.js";
import type { ModelHandle } from "../worker/model-handle.js";
import type { TokenizerHandle } from "../worker/tokenizer-handle.js";
import { Worker } from "../worker/worker.js";
import { encodeRows, formatOf, labelSet, type Row, readRows } from "./data.js";
import type { LoadedRun } from "./load.js";

export const RUN_CONFIG_FILE = "run-config.json";
export const RUN_SUMMARY_FILE = "run-summary.json";

type Encoded = Record<string, Tensor>;

export interface DistillFileOptions {
  /** Load the models and data and run the preflight check on the first batch; train nothing. */
  dryRun?: boolean;
  /** Where progress lines go (default console.log). */
  log?: (line: string) => void;
  /** Show the training progress bar (default: when stderr is a TTY). */
  progress?: boolean;
}

export interface CheckpointScore {
  step: number;
  dir: string;
  /** The evaluation split's score, and the test split's when both are given. */
  score: number;
  test?: number;
}

export interface DistillFileResult {
  outputDir: string;
  /** The plan, as printed. */
  plan: string[];
  checkpoints: CheckpointScore[];
  /** The checkpoint with the best score on the evaluation split (a tie goes to the later one). */
  best: CheckpointScore | null;
}

/** The checkpoint with the best score; a tie goes to the later one, as the demo chooses its student. */
export function bestCheckpoint(checkpoints: readonly CheckpointScore[]): CheckpointScore | null {
  return checkpoints.reduce<CheckpointScore | null>((b, c) => (b === null || c.score >= b.score ? c : b), null);
}

/** The adaptor a classification run needs: logits, hidden states (and attentions when a match reads them), mask, loss. */
function defaultAdaptor(attention: boolean): AdaptorFn {
  return attention
    ? (b, o) => ({ logits: o.logits, hidden: o.hidden_states, attention: o.attentions, inputs_mask: b.attention_mask, losses: o.loss })
    : (b, o) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });
}

async function score(model: ModelHandle, batches: readonly Encoded[]): Promise<number> {
  const predicted: number[] = [];
  const gold: number[] = [];
  for (const { labels, ...inputs } of batches) {
    predicted.push(...argmax((await model.predict(inputs)).logits!));
    gold.push(...labels!.toFlatArray().map(Number));
  }
  return accuracy(predicted, gold);
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

/** The lines `--dry-run` prints: what would be loaded, built and trained, and where it goes. */
export function describePlan(loaded: LoadedRun, outputDir: string): string[] {
  const { run, distillConfig: dc } = loaded;
  const student = run.student.create
    ? `created: ${JSON.stringify(run.student.create.config)}${run.student.create.initFrom === "teacher" ? `, from the teacher${run.student.create.layerMap ? ` (layers ${run.student.create.layerMap.join(", ")})` : ""}` : ""}`
    : `loaded from ${run.student.path}`;
  const train = Array.isArray(run.data.train) ? `${run.data.train.length} files, one per epoch (cycled)` : run.data.train;
  const t = run.training;
  return [
    `teacher: ${run.teacher.path} (${run.teacher.task})`,
    `student: ${student}${run.student.frozen ? `; frozen: /${run.student.frozen}/` : ""}`,
    `distiller: ${run.distiller.type}, KD ${dc.kdLossType} at T=${JSON.stringify(dc.temperature)}` +
      (dc.hardLabelWeight ? `, hard labels × ${dc.hardLabelWeight}` : "") +
      (dc.intermediateMatches.length ? `, ${dc.intermediateMatches.map((m) => `${m.loss} S${m.layerS}↔T${m.layerT}`).join(", ")}` : "") +
      (run.distiller.adaptor ? `; adaptor ${run.distiller.adaptor}` : ""),
    `data: train ${train}${run.data.dev ? `, dev ${run.data.dev}` : ""}${run.data.test ? `, test ${run.data.test}` : ""}; ` +
      (run.data.pretokenized
        ? "pre-tokenised"
        : `tokenised by ${run.data.tokenizer ?? run.teacher.path}, max length ${run.data.maxLength}`) +
      `, batches of ${run.data.batchSize}`,
    `training: ${t.numEpochs !== undefined ? `${t.numEpochs} epochs` : `${t.numSteps} steps`}, ${run.optimizer.type} lr ${run.optimizer.lr}` +
      (run.scheduler ? `, ${run.scheduler.type} schedule` : "") +
      (t.maxGradNorm !== undefined ? `, grad norm ≤ ${t.maxGradNorm}` : "") +
      (run.cache ? ", teacher-output cache" : ""),
    `evaluation: ${run.evaluation ? `${run.evaluation.metric} on ${run.evaluation.split} at each checkpoint` : "none"}`,
    `output: ${outputDir}`,
  ];
}

/** Runs (or, with `dryRun`, checks) a loaded run file. */
export async function runDistillFile(loaded: LoadedRun, options: DistillFileOptions = {}): Promise<DistillFileResult> {
  const { run } = loaded;
  const log = options.log ?? ((line: string) => console.log(line));
  const outputDir = resolve(run.output?.dir ?? loaded.trainConfig.outputDir);
  const plan = describePlan(loaded, outputDir);
  for (const line of plan) log(line);

  const worker = await Worker.start({ device: loaded.trainConfig.device });
  // a dry run's preflight writes nothing where the real run goes
  const scratch = options.dryRun ? mkdtempSync(join(tmpdir(), "textbrewer-dry-run-")) : null;
  try {
    const teacher = await worker.loadModel({ path: run.teacher.path, task: run.teacher.task });
    const tokenizer: TokenizerHandle | null = run.data.pretokenized
      ? null
      : await worker.loadTokenizer(run.data.tokenizer ?? run.teacher.path);

    const format = (file: string) => formatOf(file, run.data.format);
    const trainFiles = Array.isArray(run.data.train) ? run.data.train : [run.data.train];
    const trainRows = trainFiles.map((f) => readRows(f, format(f)));
    const labels = labelSet(trainRows.flat(), run.data);
    const encode = (rows: readonly Row[]) => encodeRows(rows, run.data, labels, tokenizer);
    const trainSets: Encoded[] = [];
    for (const rows of trainRows) trainSets.push(await encode(rows));
    const split = async (file?: string) =>
      file ? makeBatches(await encode(readRows(file, format(file))), { batchSize: run.evaluation?.batchSize ?? 64 }) : null;
    const dev = await split(run.data.dev);
    const test = await split(run.data.test);
    const seed = loaded.trainConfig.seed ?? 0;
    const batches = (epoch: number): Encoded[] => {
      const set = trainSets[epoch % trainSets.length]!;
      const lengths = run.data.bucketByLength && set.attention_mask ? { lengths: rowLengths(set.attention_mask) } : {};
      return makeBatches(set, { batchSize: run.data.batchSize, rng: seededRng(seed * 1000 + epoch), ...lengths });
    };
    log(`data: ${trainSets.map((s) => s.labels!.shape[0]).join("/")} training rows, ${labels.length} classes (${labels.join(", ")})`);

    const create = run.student.create;
    // as the demo: weights created next (a head the teacher lacks) start the same every run
    if (loaded.trainConfig.seed !== null) await worker.seed(loaded.trainConfig.seed);
    const student = create
      ? await worker.createModel({
          config: create.config,
          task: run.student.task,
          ...(create.initFrom === "teacher" ? { initFrom: teacher } : {}),
          ...(create.layerMap ? { layerMap: create.layerMap } : {}),
        })
      : await worker.loadModel({ path: run.student.path!, task: run.student.task });
    if (run.student.frozen) await student.setTrainable(run.student.frozen, false);

    const adaptor: Adaptor = run.distiller.adaptor
      ? { python: run.distiller.adaptor }
      : defaultAdaptor(loaded.distillConfig.intermediateMatches.some((m) => m.feature === "attention"));
    const trainConfig = { ...loaded.trainConfig, outputDir: scratch ?? outputDir };
    const common = { trainConfig, distillConfig: loaded.distillConfig, teacher, student, adaptorT: adaptor, adaptorS: adaptor };
    const distiller = run.distiller.type === "BasicDistiller" ? new BasicDistiller(common) : new GeneralDistiller(common);

    if (!options.dryRun) {
      mkdirSync(outputDir, { recursive: true });
      writeJsonAtomic(join(outputDir, RUN_CONFIG_FILE), {
        file: resolve(loaded.file),
        ...run,
        distiller: { ...run.distiller, trainConfig, distillConfig: loaded.distillConfig },
      });
    }
    const evalSplit = run.evaluation ? (run.evaluation.split === "dev" ? dev : test) : null;
    if (run.evaluation && !evalSplit)
      throw new Error(`evaluation.split is "${run.evaluation.split}" but data.${run.evaluation.split} names no file`);
    const checkpoints: CheckpointScore[] = [];
    const t = run.training;
    await distiller.train({
      optimizer: run.optimizer,
      ...(run.scheduler ? { scheduler: run.scheduler } : {}),
      data: batches,
      ...(t.numEpochs !== undefined ? { numEpochs: t.numEpochs } : {}),
      ...(t.numSteps !== undefined ? { numSteps: t.numSteps } : {}),
      ...(t.maxGradNorm !== undefined ? { maxGradNorm: t.maxGradNorm } : {}),
      ...(t.inFlight !== undefined ? { inFlight: t.inFlight } : {}),
      ...(t.logEvery !== undefined ? { logEvery: t.logEvery } : {}),
      ...(t.logLineEvery !== undefined ? { logLineEvery: t.logLineEvery } : {}),
      ...(t.onNonFinite !== undefined ? { onNonFinite: t.onNonFinite } : {}),
      ...(t.compile !== undefined ? { compile: t.compile } : {}),
      ...(t.resumeFrom !== undefined ? { resumeFrom: t.resumeFrom } : {}),
      ...(t.forwardArgs !== undefined ? { forwardArgs: t.forwardArgs } : {}),
      ...(options.progress !== undefined ? { progress: options.progress } : {}),
      teacherCache: run.cache ? { ...run.cache } : false,
      ...(options.dryRun ? { preflightOnly: true } : {}),
      ...(evalSplit
        ? {
            callback: async ({ step, student: s, checkpointDir }) => {
              const value = await score(s, evalSplit);
              const other: { test?: number } = run.evaluation!.split === "dev" && test ? { test: await score(s, test) } : {};
              writeEvalResult(checkpointDir, step, {
                [run.evaluation!.metric]: value,
                ...(other.test !== undefined ? { test: other.test } : {}),
              });
              checkpoints.push({ step, dir: checkpointDir, score: value, ...other });
              log(`step ${step}: ${run.evaluation!.split} ${run.evaluation!.metric} ${(100 * value).toFixed(2)}%`);
            },
          }
        : {}),
    });
    if (options.dryRun) {
      log("dry run: models, data and the preflight check on the first batch are fine; nothing was trained");
      return { outputDir, plan, checkpoints: [], best: null };
    }
    const best = bestCheckpoint(checkpoints);
    writeJsonAtomic(join(outputDir, RUN_SUMMARY_FILE), { file: resolve(loaded.file), labels, checkpoints, best });
    if (best) log(`best: step ${best.step} (${best.dir}), ${run.evaluation!.split} ${(100 * best.score).toFixed(2)}%`);
    return { outputDir, plan, checkpoints, best };
  } finally {
    await worker.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}
