/**
 * The training loop, written once for every distiller: epochs or steps, gradient accumulation, weight schedules,
 * checkpoint cadence, callbacks, resume, metrics, and a window of step requests in flight.
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import type { z } from "zod";
import type { TrainingConfig } from "../config/training-config.js";
import { weightSchedule } from "../schedules/weight.js";
import { WorkerError } from "../worker/errors.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import type { WorkerLink } from "../worker/worker-link.js";
import { isEpochCheckpoint, isStepsCheckpoint, stepsPerEpoch } from "./cadence.js";
import { readCheckpoint, type TrainerState } from "./checkpoint.js";
import { removeStaleTemps, writeCheckpoint } from "./checkpoint-writer.js";
import { batchSize, DataSourceError } from "./data.js";
import { NonFiniteLossError, TrainingError } from "./errors.js";
import type { PreparedStep, StepFeed, StepHooks, StepItem, StepReply } from "./hooks.js";
import { InFlight } from "./in-flight.js";
import { MetricsLog, type StepMetrics } from "./metrics.js";
import { type LoopOptions, parseLoopOptions, parseOptimizer, parseScheduler } from "./options.js";
import { fixedTermWeights, type ObjectivePlan, parsePlan, weightSchedules } from "./plan.js";
import { type Position, positions, type TrainMode } from "./positions.js";
import { LogLines, Progress } from "./progress.js";

export { TrainingError } from "./errors.js";
export type { PreparedStep, StepFeed, StepHooks, StepItem, StepReply } from "./hooks.js";

export interface LoopContext {
  worker: WorkerLink;
  student: ModelHandle;
  /** The distiller's part of the plan: models, adaptors and the objective's terms. */
  plan: ObjectivePlan;
  trainConfig: TrainingConfig;
  configs: Record<string, unknown>;
  feed: StepFeed;
  hooks?: StepHooks;
  /** Steps mode only (MultiTask). */
  stepsOnly?: boolean;
  /** train() option keys the caller adds to the loop's (checked by the caller). */
  optionKeys?: z.ZodRawShape;
  /**
   * Counts a micro-batch's valid target tokens (causal-LM KD): the loop then sends each micro-batch with `stepTokens`,
   * the sum over its optimizer step's micro-batches, so the loss is a per-token average over the whole step.
   */
  countTokens?: (batch: Batch) => number;
}

export interface TrainResult {
  globalStep: number;
  checkpoints: string[];
  metricsPath: string;
}

/** Loss values of the micro-batches of the optimizer step being accumulated (non-finite ones are left out). */
class StepAccumulator {
  private total = 0;
  private count = 0;
  private readonly terms = new Map<string, { sum: number; count: number }>();
  samples = 0;

  add(reply: StepReply, samples: number): void {
    this.samples += samples;
    if (reply.total !== undefined) {
      this.total += reply.total;
      this.count += 1;
    }
    for (const [k, v] of Object.entries(reply.terms ?? {})) {
      const t = this.terms.get(k) ?? { sum: 0, count: 0 };
      t.sum += v;
      t.count += 1;
      this.terms.set(k, t);
    }
  }

  /** Means over the micro-batches that reported; total is NaN (null in metrics.jsonl) when none had a finite one. */
  means(): { total: number; terms: Record<string, number> } {
    return {
      total: this.count ? this.total / this.count : Number.NaN,
      terms: Object.fromEntries([...this.terms].map(([k, t]) => [k, t.sum / t.count])),
    };
  }
}

/** The run's length and mode, from the options and the first epoch's size. */
function runLength(ctx: LoopContext, options: LoopOptions): { mode: TrainMode; totalSteps: number; spe: number; numEpochs: number } {
  const gas = ctx.trainConfig.gradientAccumulationSteps;
  if (options.numSteps !== undefined) {
    if (!ctx.trainConfig.ckptSteps) {
      throw new TrainingError("ckptSteps: steps mode (numSteps) needs TrainingConfig.ckptSteps, the checkpoint interval in steps");
    }
    return { mode: "steps", totalSteps: options.numSteps, spe: 0, numEpochs: 0 };
  }
  if (ctx.stepsOnly) throw new TrainingError("numSteps: this distiller trains in steps mode; give numSteps");
  if (options.numEpochs === undefined) throw new TrainingError("train(): give numEpochs (epoch mode) or numSteps (steps mode)");
  const first = ctx.feed.epoch(0);
  if (first.length === null) {
    throw new DataSourceError(
      "data: epoch mode needs to know the number of batches: pass an array, or a function (epoch) => array, or use numSteps",
    );
  }
  const spe = stepsPerEpoch(first.length, gas);
  if (spe === 0) throw new DataSourceError(`data: ${first.length} batches make no optimizer step with gradientAccumulationSteps ${gas}`);
  return { mode: "epochs", totalSteps: spe * options.numEpochs, spe, numEpochs: options.numEpochs };
}

/** The loss terms named by the worker's NonFiniteLossError ("non-finite loss in a, b"). */
function nonFiniteTerms(error: WorkerError): string[] {
  const m = /non-finite loss in (.+?)(?:$|\n)/.exec(error.pythonMessage);
  return m ? m[1]!.split(", ") : ["total"];
}

/** Thrown past the first batch's preflight when only the preflight was asked for (`preflightOnly`). */
const PREFLIGHT_DONE = Symbol("preflight done");

export async function runTraining(ctx: LoopContext, input: LoopOptions): Promise<TrainResult> {
  const options = parseLoopOptions(input, ctx.optionKeys);
  const cfg = ctx.trainConfig;
  const gas = cfg.gradientAccumulationSteps;
  const optimizer = parseOptimizer(options.optimizer);
  const scheduler = parseScheduler(options.scheduler);
  if (options.resumeFrom && !ctx.feed.replayable) {
    throw new DataSourceError(
      "resumeFrom: resuming needs data as an array or a function (epoch) => batches, so the run can find its place",
    );
  }
  const { mode, totalSteps, spe, numEpochs } = runLength(ctx, options);

  const warmupSteps = scheduler ? (scheduler.warmupSteps ?? Math.trunc((scheduler.warmupRatio ?? 0) * totalSteps)) : 0;
  const outputDir = resolve(cfg.outputDir);
  mkdirSync(outputDir, { recursive: true });
  removeStaleTemps(outputDir);
  const plan = parsePlan({
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
    onNonFinite: options.onNonFinite ?? "raise",
  });
  const weights = weightSchedules(plan.terms);
  const termWeights = fixedTermWeights(plan.terms);
  const worker = ctx.worker;
  const configured = await worker.call("train_configure", { plan });
  for (const w of configured.warnings) console.warn(`textbrewer-ts: ${w}`);

  let start = { globalStep: 0, pass: 0, index: 0 };
  let kdWeight = weights?.kdLossWeight ?? 1;
  let hardWeight = weights?.hardLabelWeight ?? 0;
  let lastCheckpoint: string | null = null;
  if (options.resumeFrom) {
    const { dir, state } = readCheckpoint(outputDir, options.resumeFrom);
    if (state.mode !== mode || state.totalSteps !== totalSteps) {
      throw new TrainingError(
        `resumeFrom: ${dir} was written by a ${state.mode}-mode run of ${state.totalSteps} steps; this run is ${mode} mode with ${totalSteps} steps`,
      );
    }
    await worker.call("train_load", { dir });
    start = { globalStep: state.globalStep, pass: state.epoch, index: state.nextBatch };
    ({ kdWeight, hardWeight } = state);
    lastCheckpoint = dir;
  }

  const metrics = new MetricsLog(outputDir);
  const showBar = options.progress ?? Boolean(process.stderr.isTTY);
  const progress = new Progress(totalSteps, showBar, start.globalStep);
  const logLines =
    showBar || process.stderr.isTTY || options.logLineEvery === 0
      ? null
      : new LogLines({ total: totalSteps, start: start.globalStep, every: options.logLineEvery });
  const inFlight = new InFlight(options.inFlight ?? 2);
  const logEvery = options.logEvery ?? 1;
  const checkpoints: string[] = [];
  let acc = new StepAccumulator();
  let lastStepTime = Date.now();
  let skippedSteps = 0;
  let checked = options.preflight === false;

  const weighted = (terms: Record<string, number>, kd: number, hard: number): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [name, v] of Object.entries(terms)) {
      const w = name === "unweighted_kd_loss" ? kd : name === "unweighted_hard_label_loss" ? hard : (termWeights[name] ?? 1);
      out[name.replace(/^unweighted_/, "weighted_")] = v * w;
    }
    return out;
  };

  /** One metrics line per optimizer step, from the micro-batches accumulated for it. */
  const logStep = (at: Position, reply: StepReply, kd: number, hard: number): void => {
    const now = Date.now();
    const { total, terms } = acc.means();
    if (reply.skipped) skippedSteps++;
    const line: StepMetrics = {
      step: at.globalStep,
      epoch: at.pass,
      time: now / 1000,
      total,
      terms,
      weighted: weighted(terms, kd, hard),
      lr: reply.lr ?? [],
      gradNorm: reply.gradNorm ?? null,
      samplesPerSecond: acc.samples / Math.max(1e-3, (now - lastStepTime) / 1000),
      ...(reply.workerIdleMs !== undefined ? { workerIdleMs: reply.workerIdleMs } : {}),
      ...(weights ? { kdWeight: kd, hardWeight: hard } : {}),
      ...(ctx.hooks?.metrics ? { counters: ctx.hooks.metrics() } : {}),
      ...(reply.skipped ? { skipped: reply.skipped } : {}),
      ...(reply.nonFinite?.length ? { nonFinite: reply.nonFinite } : {}),
      ...(reply.lossScale !== undefined ? { lossScale: reply.lossScale } : {}),
      ...(skippedSteps ? { skippedSteps } : {}),
    };
    metrics.write(line);
    progress.update(at.globalStep, line.total, line.lr[0] ?? 0, start.globalStep);
    logLines?.step(line, acc.samples, isCheckpoint(at));
    lastStepTime = now;
    acc = new StepAccumulator();
  };

  /** Sends one micro-batch; `handled` settles once its reply is handled (afterStep, metrics) or it failed. */
  const send = async (item: StepItem, at: Position, stepTokens?: number): Promise<{ handled: Promise<void> }> => {
    const report = at.optimizerStep || (at.micro - 1) % logEvery === 0;
    const prepared: PreparedStep = ctx.hooks?.beforeStep ? await ctx.hooks.beforeStep(item) : {};
    const batch = prepared.batch ?? item.batch;
    if (!checked) {
      checked = true;
      await worker.call("train_preflight", { batch, task: item.task });
      if (options.preflightOnly) throw PREFLIGHT_DONE;
    }
    const kd = kdWeight;
    const hard = hardWeight;
    const samples = batchSize(batch);
    const request = worker.call("train_step", {
      batch,
      task: item.task,
      optimizerStep: at.optimizerStep,
      report,
      kdWeight: kd,
      hardWeight: hard,
      ...(stepTokens !== undefined ? { stepTokens } : {}),
      ...prepared.args,
    });
    request.catch(() => ctx.hooks?.stepFailed?.(prepared));
    const handled = request.then(
      async (reply) => {
        if (ctx.hooks?.afterStep) await ctx.hooks.afterStep(prepared, reply);
        acc.add(reply, samples);
        if (at.optimizerStep) logStep(at, reply, kd, hard);
      },
      (error: unknown) => {
        if (error instanceof WorkerError && error.pythonType === "NonFiniteLossError") {
          // the worker checks at the optimizer step ending the group this micro-batch belongs to
          const step = at.optimizerStep ? at.globalStep : at.globalStep + 1;
          throw new NonFiniteLossError(step, nonFiniteTerms(error), lastCheckpoint, { cause: error });
        }
        throw error;
      },
    );
    handled.catch(() => undefined); // surfaced in order by InFlight
    return { handled };
  };

  const isCheckpoint = (at: Position): boolean =>
    mode === "steps"
      ? isStepsCheckpoint({ globalStep: at.globalStep, ckptSteps: cfg.ckptSteps!, numSteps: totalSteps })
      : isEpochCheckpoint({
          globalStep: at.globalStep,
          stepsPerEpoch: spe,
          epoch: at.pass,
          numEpochs,
          ckptFrequency: cfg.ckptFrequency,
          ckptEpochFrequency: cfg.ckptEpochFrequency,
        });

  const trainerState = (at: Position): TrainerState => ({
    version: 1,
    globalStep: at.globalStep,
    epoch: at.next.pass,
    nextBatch: at.next.index,
    mode,
    totalSteps,
    kdWeight,
    hardWeight,
    configs: ctx.configs,
    savedAt: new Date().toISOString(),
  });

  let globalStep = start.globalStep;
  try {
    const run = positions(ctx.feed, { mode, gradientAccumulationSteps: gas, stepsPerEpoch: spe, numEpochs, totalSteps }, start);
    // with countTokens, an optimizer step's micro-batches are held until its last one is read, to send their token sum
    const group: Array<{ item: StepItem; at: Position }> = [];
    for await (const read of run) {
      const { at } = read;
      const item = options.batchPostprocessor ? { ...read.item, batch: options.batchPostprocessor(read.item.batch) } : read.item;
      if (ctx.countTokens) {
        group.push({ item, at });
        if (!at.optimizerStep) continue;
        const stepTokens = group.reduce((sum, g) => sum + ctx.countTokens!(g.item.batch), 0);
        for (const g of group.splice(0)) await inFlight.add((await send(g.item, g.at, stepTokens)).handled);
      } else {
        await inFlight.add((await send(item, at)).handled);
      }
      if (!at.optimizerStep) continue;
      globalStep = at.globalStep;
      if (weights) {
        const x = globalStep / totalSteps;
        kdWeight = weightSchedule(weights.kdLossWeightScheduler, x) ?? kdWeight;
        hardWeight = weightSchedule(weights.hardLabelWeightScheduler, x) ?? hardWeight;
      }
      if (!isCheckpoint(at)) continue;
      await inFlight.drain();
      const dir = await writeCheckpoint(worker, outputDir, trainerState(at));
      lastCheckpoint = dir;
      checkpoints.push(dir);
      logLines?.saved(dir);
      if (options.callback) await options.callback({ step: globalStep, epoch: at.pass, student: ctx.student, checkpointDir: dir });
    }
    await inFlight.drain();
  } catch (error) {
    await inFlight.settle();
    progress.stop();
    await worker.call("train_end").catch(() => undefined);
    if (error === PREFLIGHT_DONE) return { globalStep: 0, checkpoints: [], metricsPath: metrics.path };
    throw error;
  }
  progress.stop();
  await worker.call("train_end");
  return { globalStep, checkpoints, metricsPath: metrics.path };
}
