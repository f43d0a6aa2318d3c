import type { AdaptorSpec } from "../adaptor/index.js";
import type { DistillationConfig } from "../config/distillation-config.js";
import type { TrainingConfig } from "../config/training-config.js";
import { DataFeed } from "../train/data.js";
import { runTraining, type StepFeed, type StepHooks, type TrainResult } from "../train/loop.js";
import type { TrainOptions } from "../train/options.js";
import type { ModelHandle } from "../worker/model-handle.js";
import {
  objectivePlan,
  parseDistillationConfig,
  parseTrainingConfig,
  sameWorker,
  termWeights,
  type DistillationConfigLike,
  type TrainingConfigLike,
} from "./common.js";

export interface DistillerBaseOptions {
  trainConfig?: TrainingConfigLike;
  distillConfig?: DistillationConfigLike;
  student: ModelHandle;
}

/** What differs between distillers: which teachers, which adaptors, and which objective parts. */
export interface TeacherPlan {
  teachers: string[] | Record<string, string[]>;
  adaptorT: AdaptorSpec[] | Record<string, AdaptorSpec[]>;
  adaptorS: AdaptorSpec | Record<string, AdaptorSpec>;
  tasks?: string[];
}

/** One class per TextBrewer distiller compiles its configs into a plan; the loop is shared. */
export abstract class DistillerBase {
  readonly trainConfig: TrainingConfig;
  readonly distillConfig: DistillationConfig;
  readonly student: ModelHandle;
  protected abstract readonly withMatches: boolean;
  protected abstract readonly requireLogits: boolean;

  constructor(options: DistillerBaseOptions) {
    this.trainConfig = parseTrainingConfig(options.trainConfig);
    this.distillConfig = parseDistillationConfig(options.distillConfig);
    this.student = options.student;
  }

  protected abstract teacherPlan(): TeacherPlan;
  /** Every model of the run, by the option name that holds it (for error messages). */
  protected abstract models(): Record<string, ModelHandle>;

  protected extraPlan(): Record<string, unknown> {
    return {};
  }

  protected extraTermWeights(): Record<string, number> {
    return {};
  }

  protected feed(options: TrainOptions): StepFeed {
    return new DataFeed(options.data);
  }

  protected hooks(_options: TrainOptions): StepHooks | undefined {
    return undefined;
  }

  protected get stepsOnly(): boolean {
    return false;
  }

  /** Runs the shared loop with this distiller's plan. */
  protected run(options: TrainOptions): Promise<TrainResult> {
    const worker = sameWorker({ student: this.student, ...this.models() }, this.trainConfig);
    const d = this.distillConfig;
    const teacherPlan = this.teacherPlan();
    const hooks = this.hooks(options);
    return runTraining(
      {
        worker,
        student: this.student,
        plan: {
          ...objectivePlan(d, { requireLogits: this.requireLogits, withMatches: this.withMatches }),
          ...this.extraPlan(),
          ...teacherPlan,
          student: this.student.id,
        },
        trainConfig: this.trainConfig,
        weights: d,
        termWeights: { ...termWeights(d), ...this.extraTermWeights() },
        configs: { trainConfig: this.trainConfig, distillConfig: d, ...teacherPlan },
        feed: this.feed(options),
        stepsOnly: this.stepsOnly,
        ...(hooks ? { hooks } : {}),
      },
      options,
    );
  }
}
