/**
 * The training loop, written once for every distiller: epochs or steps, gradient accumulation, weight schedules,
 * checkpoint cadence, callbacks, resume, metrics, and a window of step requests in flight.
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import type { TrainingConfig } from "../config/training-config.js";
import { weightSchedule, type WeightSchedulerName } from "../schedules/weight.js";
import type { Worker } from "../worker/worker.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import { isEpochCheckpoint, isStepsCheckpoint, stepsPerEpoch } from "./cadence.js";
import { commitCheckpoint, readCheckpoint, tempCheckpointDir, type TrainerState } from "./checkpoint.js";
import { batchSize, DataSourceError, iterate } from "./data.js";
import { MetricsLog, type StepMetrics } from "./metrics.js";
import { parseOptimizer, parseScheduler, type TrainOptions } from "./options.js";
import { Progress } from "./progress.js";

/** One micro-batch as the loop sees it. */
export interface StepItem {
  batch: Batch;
  task?: string;
}

/** Where a run's micro-batches come from, per epoch (or per data pass in steps mode). */
export interface StepFeed {
  readonly replayable: boolean;
  epoch(index: number): { items: AsyncIterable<StepItem> | Iterable<StepItem>; length: number | null };
}

export interface StepReply {
  total?: number;
  terms?: Record<string, number>;
  lr?: number[];
  gradNorm?: number;
  /** Milliseconds the worker waited for requests since the previous optimizer step. */
  workerIdleMs?: number;
  teacherLogits?: unknown;
}

/** What a hook makes of a micro-batch before it is sent: a replacement batch, extra step args, its own state. */
export interface PreparedStep {
  batch?: Batch;
  args?: Record<string, unknown>;
  state?: unknown;
}

/** Per-step extras a distiller adds (e.g. cached teacher logits) and what it does with the reply. */
export interface StepHooks {
  beforeStep?(item: StepItem): Promise<PreparedStep> | PreparedStep;
  afterStep?(prepared: PreparedStep, reply: StepReply): Promise<void> | void;
  /** The step prepared by beforeStep failed (afterStep will not run for it); release what beforeStep holds. */
  stepFailed?(prepared: PreparedStep): void;
  /** Counters added to every metrics line (e.g. cache hits, teacher forwards skipped). */
  metrics?(): Record<string, number>;
}

export interface WeightSchedules {
  kdLossWeight: number;
  hardLabelWeight: number;
  kdLossWeightScheduler: WeightSchedulerName;
  hardLabelWeightScheduler: WeightSchedulerName;
}

export interface LoopContext {
  worker: Worker;
  student: ModelHandle;
  /** The strategy's part of the plan (models, adaptors, objective). */
  plan: Record<string, unknown>;
  trainConfig: TrainingConfig;
  weights: WeightSchedules | null;
  /** Weight of a named term other than kd / hard-label (intermediate matches). */
  termWeights: Record<string, number>;
  configs: Record<string, unknown>;
  feed: StepFeed;
  hooks?: StepHooks;
  /** Steps mode only (MultiTask). */
  stepsOnly?: boolean;
}

export interface TrainResult {
  globalStep: number;
  checkpoints: string[];
  metricsPath: string;
}

export class TrainingError extends Error {
  override readonly name = "TrainingError";
}

interface StepAccumulator {
  total: number;
  terms: Record<string, number>;
  count: number;
  samples: number;
}

export async function runTraining(ctx: LoopContext, options: TrainOptions): Promise<TrainResult> {
  const cfg = ctx.trainConfig;
  const gas = cfg.gradientAccumulationSteps;
  const optimizer = parseOptimizer(options.optimizer);
  const scheduler = parseScheduler(options.scheduler);
  const mode: "epochs" | "steps" = options.numSteps !== undefined ? "steps" : "epochs";
  if (mode === "epochs" && (options.numEpochs === undefined || options.numEpochs <= 0)) {
    throw new TrainingError(ctx.stepsOnly ? "numSteps: this distiller trains in steps mode; give numSteps" : "train(): give numEpochs (epoch mode) or numSteps (steps mode)");
  }
  if (mode === "epochs" && ctx.stepsOnly) throw new TrainingError("numSteps: this distiller trains in steps mode; give numSteps");
  if (mode === "steps" && (!Number.isInteger(options.numSteps) || options.numSteps! <= 0)) {
    throw new TrainingError(`numSteps: expected a positive integer, got ${options.numSteps}`);
  }
  if (mode === "steps" && !cfg.ckptSteps) {
    throw new TrainingError("ckptSteps: steps mode (numSteps) needs TrainingConfig.ckptSteps, the checkpoint interval in steps");
  }
  if (options.resumeFrom && !ctx.feed.replayable) {
    throw new DataSourceError("resumeFrom: resuming needs data as an array or a function (epoch) => batches, so the run can find its place");
  }

  let spe = 0;
  let totalSteps: number;
  const numEpochs = Math.trunc(options.numEpochs ?? 0);
  if (mode === "epochs") {
    const first = ctx.feed.epoch(0);
    if (first.length === null) {
      throw new DataSourceError("data: epoch mode needs to know the number of batches: pass an array, or a function (epoch) => array, or use numSteps");
    }
    spe = stepsPerEpoch(first.length, gas);
    if (spe === 0) throw new DataSourceError(`data: ${first.length} batches make no optimizer step with gradientAccumulationSteps ${gas}`);
    totalSteps = spe * numEpochs;
  } else {
    totalSteps = options.numSteps!;
  }

  const warmupSteps = scheduler ? (scheduler.warmupSteps ?? Math.trunc((scheduler.warmupRatio ?? 0) * totalSteps)) : 0;
  const outputDir = resolve(cfg.outputDir);
  mkdirSync(outputDir, { recursive: true });
  const plan = {
    ...ctx.plan,
    optimizer,
    scheduler: scheduler ? { type: scheduler.type, warmupSteps, totalSteps, minLrRatio: scheduler.minLrRatio ?? 0 } : null,
    maxGradNorm: options.maxGradNorm ?? -1,
    gradientAccumulationSteps: gas,
    mixedPrecision: cfg.mixedPrecision,
    seed: cfg.seed,
    forwardArgs: options.forwardArgs ?? {},
    compile: options.compile ?? false,
    logDir: cfg.logDir ? resolve(cfg.logDir) : null,
  };
  const worker = ctx.worker;
  const configured = (await worker.call("train_configure", { plan })) as { warnings?: string[] };
  for (const w of configured.warnings ?? []) console.warn(`textbrewer-ts: ${w}`);

  let globalStep = 0;
  let epoch = 0;
  let nextBatch = 0;
  let kdWeight = ctx.weights?.kdLossWeight ?? 1;
  let hardWeight = ctx.weights?.hardLabelWeight ?? 0;
  if (options.resumeFrom) {
    const { dir, state } = readCheckpoint(outputDir, options.resumeFrom);
    if (state.mode !== mode || state.totalSteps !== totalSteps) {
      throw new TrainingError(
        `resumeFrom: ${dir} was written by a ${state.mode}-mode run of ${state.totalSteps} steps; this run is ${mode} mode with ${totalSteps} steps`,
      );
    }
    await worker.call("train_load", { dir });
    ({ globalStep, epoch, nextBatch, kdWeight, hardWeight } = state);
  }

  const metrics = new MetricsLog(outputDir);
  const progress = new Progress(totalSteps, options.progress ?? Boolean(process.stderr.isTTY), globalStep);
  const startStep = globalStep;
  const inFlight = Math.max(1, options.inFlight ?? 2);
  const logEvery = Math.max(1, options.logEvery ?? 1);
  const pending: Promise<void>[] = [];
  const checkpoints: string[] = [];
  let acc: StepAccumulator = { total: 0, terms: {}, count: 0, samples: 0 };
  let lastStepTime = Date.now();
  let microCount = 0;

  const weighted = (terms: Record<string, number>, kd: number, hard: number): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [name, v] of Object.entries(terms)) {
      const w = name === "unweighted_kd_loss" ? kd : name === "unweighted_hard_label_loss" ? hard : (ctx.termWeights[name] ?? 1);
      out[name.replace(/^unweighted_/, "weighted_")] = v * w;
    }
    return out;
  };

  let checked = options.preflight === false;
  const send = async (item: StepItem, optimizerStep: boolean, stepNo: number, stepEpoch: number): Promise<void> => {
    const report = optimizerStep || microCount % logEvery === 0;
    microCount++;
    const processed = options.batchPostprocessor ? options.batchPostprocessor(item.batch) : item.batch;
    const prepared: PreparedStep = ctx.hooks?.beforeStep ? await ctx.hooks.beforeStep({ ...item, batch: processed }) : {};
    const batch = prepared.batch ?? processed;
    if (!checked) {
      checked = true;
      await worker.call("train_preflight", { batch, task: item.task ?? null });
    }
    const kd = kdWeight;
    const hard = hardWeight;
    const samples = batchSize(batch);
    const request = worker.call("train_step", {
      batch,
      task: item.task ?? null,
      optimizerStep,
      report,
      kdWeight: kd,
      hardWeight: hard,
      ...prepared.args,
    });
    const handled = request.then(async (raw) => {
      const reply = raw as StepReply;
      if (ctx.hooks?.afterStep) await ctx.hooks.afterStep(prepared, reply);
      acc.samples += samples;
      if (reply.total !== undefined) {
        acc.total += reply.total;
        acc.count += 1;
        for (const [k, v] of Object.entries(reply.terms ?? {})) acc.terms[k] = (acc.terms[k] ?? 0) + v;
      }
      if (!optimizerStep) return;
      const now = Date.now();
      const n = Math.max(1, acc.count);
      const terms = Object.fromEntries(Object.entries(acc.terms).map(([k, v]) => [k, v / n]));
      const line: StepMetrics = {
        step: stepNo,
        epoch: stepEpoch,
        time: now / 1000,
        total: acc.total / n,
        terms,
        weighted: weighted(terms, kd, hard),
        lr: reply.lr ?? [],
        gradNorm: reply.gradNorm ?? null,
        samplesPerSecond: acc.samples / Math.max(1e-3, (now - lastStepTime) / 1000),
        ...(reply.workerIdleMs !== undefined ? { workerIdleMs: reply.workerIdleMs } : {}),
        ...(ctx.weights ? { kdWeight: kd, hardWeight: hard } : {}),
        ...(ctx.hooks?.metrics ? { counters: ctx.hooks.metrics() } : {}),
      };
      metrics.write(line);
      progress.update(stepNo, line.total, line.lr[0] ?? 0, startStep);
      lastStepTime = now;
      acc = { total: 0, terms: {}, count: 0, samples: 0 };
    });
    request.catch(() => ctx.hooks?.stepFailed?.(prepared));
    handled.catch(() => undefined); // surfaced when awaited below
    pending.push(handled);
    while (pending.length >= inFlight) await pending.shift();
  };

  const drain = async (): Promise<void> => {
    while (pending.length) await pending.shift();
  };

  const afterOptimizerStep = async (stepEpoch: number, nextInEpoch: number, isCheckpoint: boolean): Promise<void> => {
    if (ctx.weights) {
      const x = globalStep / totalSteps;
      kdWeight = weightSchedule(ctx.weights.kdLossWeightScheduler, x) ?? kdWeight;
      hardWeight = weightSchedule(ctx.weights.hardLabelWeightScheduler, x) ?? hardWeight;
    }
    if (!isCheckpoint) return;
    await drain();
    const tmp = tempCheckpointDir(outputDir, globalStep);
    await worker.call("train_save", { dir: tmp });
    const state: TrainerState = {
      version: 1,
      globalStep,
      epoch: stepEpoch,
      nextBatch: nextInEpoch,
      mode,
      totalSteps,
      kdWeight,
      hardWeight,
      configs: ctx.configs,
      savedAt: new Date().toISOString(),
    };
    if (mode === "epochs" && nextInEpoch >= spe * gas) {
      state.epoch = stepEpoch + 1;
      state.nextBatch = 0;
    }
    const dir = commitCheckpoint(outputDir, tmp, state);
    checkpoints.push(dir);
    if (options.callback) await options.callback({ step: globalStep, epoch: stepEpoch, student: ctx.student, checkpointDir: dir });
  };

  try {
    if (mode === "epochs") {
      for (let e = epoch; e < numEpochs; e++) {
        const data = e === 0 && e !== epoch ? ctx.feed.epoch(0) : ctx.feed.epoch(e);
        const limit = spe * gas; // micro-batches past the last full accumulation are dropped, as in TextBrewer
        let i = e === epoch ? nextBatch : 0;
        for await (const item of iterate<StepItem>(data.items, i)) {
          if (i >= limit) break;
          const optimizerStep = (i + 1) % gas === 0;
          if (optimizerStep) globalStep++;
          await send(item, optimizerStep, globalStep, e);
          i++;
          if (optimizerStep) {
            const save = isEpochCheckpoint({
              globalStep,
              stepsPerEpoch: spe,
              epoch: e,
              numEpochs,
              ckptFrequency: cfg.ckptFrequency,
              ckptEpochFrequency: cfg.ckptEpochFrequency,
            });
            await afterOptimizerStep(e, i, save);
          }
        }
      }
    } else {
      let pass = epoch;
      let i = nextBatch;
      while (globalStep < totalSteps) {
        const data = ctx.feed.epoch(pass);
        let seen = 0;
        for await (const item of iterate<StepItem>(data.items, i)) {
          seen++;
          const optimizerStep = (i + 1) % gas === 0;
          if (optimizerStep) globalStep++;
          await send(item, optimizerStep, globalStep, pass);
          i++;
          if (optimizerStep) {
            const save = isStepsCheckpoint({ globalStep, ckptSteps: cfg.ckptSteps!, numSteps: totalSteps });
            await afterOptimizerStep(pass, i, save);
            if (globalStep >= totalSteps) break;
          }
        }
        if (globalStep >= totalSteps) break;
        if (seen === 0) throw new DataSourceError(`data: pass ${pass} yielded no batches; steps mode needs data to cycle through`);
        if (!ctx.feed.replayable) throw new DataSourceError("data: the iterable ran out before numSteps; pass an array or a function (epoch) => batches so it can cycle");
        pass++;
        i = 0;
      }
    }
    await drain();
  } catch (error) {
    await Promise.allSettled(pending);
    progress.stop();
    await worker.call("train_end").catch(() => undefined);
    throw error;
  }
  progress.stop();
  await worker.call("train_end");
  return { globalStep, checkpoints, metricsPath: metrics.path };
}
