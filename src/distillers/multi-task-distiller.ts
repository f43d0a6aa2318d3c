import { z } from "zod";
import type { Adaptor, AdaptorSpec } from "../adaptor/index.js";
import { seededRng } from "../data/rng.js";
import { DataFeed, iterate } from "../train/data.js";
import type { StepFeed, StepItem } from "../train/hooks.js";
import type { TrainResult } from "../train/loop.js";
import type { DataSource } from "../train/options.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import { adaptorSpec } from "./common.js";
import { DistillerBase, type DistillerBaseOptions, type TeacherPlan } from "./distiller-base.js";
import { distillerOptionKeys, type TrainOptions } from "./train-options.js";

export interface MultiTaskDistillerOptions extends DistillerBaseOptions {
  /** One teacher per task. */
  teachers: Record<string, ModelHandle>;
  adaptorT: Record<string, Adaptor>;
  adaptorS: Record<string, Adaptor>;
}

export interface MultiTaskTrainOptions extends Omit<TrainOptions, "data" | "batchPostprocessor" | "numEpochs"> {
  /** Batches per task. */
  data: Record<string, DataSource>;
  numSteps: number;
  /** Each micro-batch comes from task k with probability ∝ (number of batches of k)^tau; uniform if a size is unknown. */
  tau?: number;
  batchPostprocessors?: Record<string, (batch: Batch) => Batch>;
}

/** Samples a task per micro-batch, seeded, and walks each task's data in order, cycling it. */
export class TaskSampler implements StepFeed {
  readonly replayable: boolean;
  readonly probabilities: Record<string, number>;

  constructor(
    private readonly sources: Record<string, DataSource>,
    tau: number,
    private readonly seed: number,
    private readonly postprocessors: Record<string, (batch: Batch) => Batch> = {},
  ) {
    const feeds = Object.entries(sources).map(([task, src]) => [task, new DataFeed(src)] as const);
    this.replayable = feeds.every(([, f]) => f.replayable);
    const sizes = feeds.map(([task, f]) => [task, f.replayable ? f.epoch(0).length : null] as const);
    const known = sizes.every(([, n]) => n !== null);
    const weights = sizes.map(([, n]) => (known ? n! ** tau : 1));
    const sum = weights.reduce((a, b) => a + b, 0);
    this.probabilities = Object.fromEntries(sizes.map(([task], i) => [task, weights[i]! / sum]));
  }

  epoch(_index: number): { items: AsyncIterable<StepItem>; length: null } {
    return { items: this.stream(), length: null };
  }

  private async *stream(): AsyncGenerator<StepItem> {
    const tasks = Object.keys(this.sources);
    const weights = tasks.map((t) => this.probabilities[t]!);
    const rng = seededRng(this.seed);
    const feeds = Object.fromEntries(tasks.map((t) => [t, new DataFeed(this.sources[t]!)]));
    const cursors: Record<string, { pass: number; it: AsyncIterator<{ batch: Batch }> }> = {};
    const open = (task: string, pass: number) => ({ pass, it: iterate(feeds[task]!.epoch(pass).items)[Symbol.asyncIterator]() });
    for (;;) {
      const task = tasks[rng.choice(weights)]!;
      cursors[task] ??= open(task, 0);
      let next = await cursors[task].it.next();
      if (next.done) {
        cursors[task] = open(task, cursors[task].pass + 1);
        next = await cursors[task].it.next();
        if (next.done) throw new Error(`data.${task}: no batches`);
      }
      const post = this.postprocessors[task];
      yield { task, batch: post ? post(next.value.batch) : next.value.batch };
    }
  }
}

/** One student, one teacher and adaptor pair per task; matches apply to every task (TextBrewer's MultiTaskDistiller). */
export class MultiTaskDistiller extends DistillerBase {
  protected readonly withMatches = true;
  protected readonly requireLogits = false;
  readonly teachers: Record<string, ModelHandle>;
  private readonly adaptorT: Record<string, AdaptorSpec>;
  private readonly adaptorS: Record<string, AdaptorSpec>;
  private sampler: TaskSampler | null = null;

  constructor(options: MultiTaskDistillerOptions) {
    super(options);
    const tasks = Object.keys(options.teachers);
    if (!tasks.length) throw new Error("teachers: give one teacher per task, e.g. { sentiment: teacherA, ner: teacherB }");
    for (const [name, rec] of [
      ["adaptorT", options.adaptorT],
      ["adaptorS", options.adaptorS],
    ] as const) {
      const missing = tasks.filter((t) => !(t in rec));
      if (missing.length) throw new Error(`${name}: no adaptor for task(s) ${missing.join(", ")}`);
    }
    this.teachers = options.teachers;
    this.adaptorT = Object.fromEntries(tasks.map((t) => [t, adaptorSpec(options.adaptorT[t]!, `adaptorT.${t}`)]));
    this.adaptorS = Object.fromEntries(tasks.map((t) => [t, adaptorSpec(options.adaptorS[t]!, `adaptorS.${t}`)]));
  }

  protected teacherPlan(): TeacherPlan {
    const tasks = Object.keys(this.teachers);
    return {
      tasks,
      teachers: Object.fromEntries(tasks.map((t) => [t, [this.teachers[t]!.id]])),
      adaptorT: Object.fromEntries(tasks.map((t) => [t, [this.adaptorT[t]!]])),
      adaptorS: this.adaptorS,
    };
  }

  protected models(): Record<string, ModelHandle> {
    return Object.fromEntries(Object.entries(this.teachers).map(([t, m]) => [`teachers.${t}`, m]));
  }

  protected override cacheable(): string {
    return "MultiTaskDistiller does not cache teacher outputs (as in TextBrewer)";
  }

  protected override get stepsOnly(): boolean {
    return true;
  }

  protected override optionKeys(): z.ZodRawShape {
    return { ...distillerOptionKeys, tau: z.number().optional(), batchPostprocessors: z.record(z.string(), z.unknown()).optional() };
  }

  protected override feed(): StepFeed {
    return this.sampler!;
  }

  train(options: MultiTaskTrainOptions): Promise<TrainResult> {
    const { data, tau, batchPostprocessors } = options;
    const tasks = Object.keys(this.teachers);
    const missing = tasks.filter((t) => !(t in data));
    if (missing.length) return Promise.reject(new Error(`data: no batches for task(s) ${missing.join(", ")}`));
    const extra = Object.keys(data).filter((t) => !tasks.includes(t));
    if (extra.length) return Promise.reject(new Error(`data: task(s) ${extra.join(", ")} have no teacher`));
    this.sampler = new TaskSampler(data, tau ?? 1, this.trainConfig.seed ?? 0, batchPostprocessors);
    return this.run({ ...options, data: [] });
  }
}
