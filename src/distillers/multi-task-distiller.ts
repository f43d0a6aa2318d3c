import { z } from "zod";
import type { Adaptor, AdaptorSpec } from "../adaptor/index.js";
import type { StepFeed } from "../train/hooks.js";
import type { TrainResult } from "../train/loop.js";
import type { DataSource } from "../train/options.js";
import type { TermSpecInput } from "../train/plan.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import { adaptorSpec, hardLabelTerm, kdTerm, matchTerms } from "./common.js";
import { DistillerBase, type DistillerBaseOptions, type TeacherPlan } from "./distiller-base.js";
import { TaskSampler } from "./task-sampler.js";
import { distillerOptionKeys, type TrainOptions } from "./train-options.js";

export { TaskSampler } from "./task-sampler.js";

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

/** One student, one teacher and adaptor pair per task; matches apply to every task (TextBrewer's MultiTaskDistiller). */
export class MultiTaskDistiller extends DistillerBase {
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

  protected terms(): TermSpecInput[] {
    const d = this.distillConfig;
    return [kdTerm(d, { required: false }), ...matchTerms(d), hardLabelTerm(d)];
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
