import type { Adaptor, AdaptorSpec } from "../adaptor/index.js";
import type { DistillationConfig } from "../config/distillation-config.js";
import type { TrainingConfig } from "../config/training-config.js";
import { DataFeed } from "../train/data.js";
import { runTraining, type StepHooks, type StepFeed, type TrainResult } from "../train/loop.js";
import type { TrainOptions } from "../train/options.js";
import type { ModelHandle } from "../worker/model-handle.js";
import {
  adaptorSpec,
  objectivePlan,
  parseDistillationConfig,
  parseTrainingConfig,
  sameWorker,
  termWeights,
  type DistillationConfigLike,
  type TrainingConfigLike,
} from "./common.js";

export interface DistillerOptions {
  trainConfig?: TrainingConfigLike;
  distillConfig?: DistillationConfigLike;
  teacher: ModelHandle;
  student: ModelHandle;
  adaptorT: Adaptor;
  adaptorS: Adaptor;
}

/** Shared by the single-teacher distillers: one teacher, one student, KD (+ matches for General). */
export abstract class SingleTeacherDistiller {
  readonly trainConfig: TrainingConfig;
  readonly distillConfig: DistillationConfig;
  readonly teacher: ModelHandle;
  readonly student: ModelHandle;
  protected readonly adaptorT: AdaptorSpec;
  protected readonly adaptorS: AdaptorSpec;
  protected abstract readonly withMatches: boolean;
  protected abstract readonly requireLogits: boolean;

  constructor(options: DistillerOptions) {
    this.trainConfig = parseTrainingConfig(options.trainConfig);
    this.distillConfig = parseDistillationConfig(options.distillConfig);
    this.teacher = options.teacher;
    this.student = options.student;
    this.adaptorT = adaptorSpec(options.adaptorT, "adaptorT");
    this.adaptorS = adaptorSpec(options.adaptorS, "adaptorS");
  }

  /** Hooks and feed for subclasses that change what a step carries (the teacher cache). */
  protected hooks(_options: TrainOptions): StepHooks | undefined {
    return undefined;
  }

  protected feed(options: TrainOptions): StepFeed {
    return new DataFeed(options.data);
  }

  train(options: TrainOptions): Promise<TrainResult> {
    const worker = sameWorker({ teacher: this.teacher, student: this.student }, this.trainConfig);
    const d = this.distillConfig;
    const hooks = this.hooks(options);
    return runTraining(
      {
        worker,
        student: this.student,
        plan: {
          ...objectivePlan(d, { requireLogits: this.requireLogits, withMatches: this.withMatches }),
          student: this.student.id,
          teachers: [this.teacher.id],
          adaptorS: this.adaptorS,
          adaptorT: [this.adaptorT],
        },
        trainConfig: this.trainConfig,
        weights: d,
        termWeights: termWeights(d),
        configs: { trainConfig: this.trainConfig, distillConfig: d, adaptorT: this.adaptorT, adaptorS: this.adaptorS },
        feed: this.feed(options),
        ...(hooks ? { hooks } : {}),
      },
      options,
    );
  }
}

/** KD on logits plus intermediate feature matches with projections (TextBrewer's GeneralDistiller). */
export class GeneralDistiller extends SingleTeacherDistiller {
  protected readonly withMatches = true;
  protected readonly requireLogits = false;
}
