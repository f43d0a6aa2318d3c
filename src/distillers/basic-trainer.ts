import type { Adaptor } from "../adaptor/index.js";
import type { TrainingConfig } from "../config/training-config.js";
import { DataFeed } from "../train/data.js";
import { runTraining, type TrainResult } from "../train/loop.js";
import type { LoopOptions } from "../train/options.js";
import type { ModelHandle } from "../worker/model-handle.js";
import { adaptorSpec, parseTrainingConfig, sameWorker, type TrainingConfigLike } from "./common.js";

export interface BasicTrainerOptions {
  trainConfig?: TrainingConfigLike;
  model: ModelHandle;
  /** Must return `losses` (e.g. `out.loss` of an HF model given labels); the loss is their sum of means. */
  adaptor: Adaptor;
}

/** Supervised training with the distillers' loop (TextBrewer's BasicTrainer). */
export class BasicTrainer {
  readonly trainConfig: TrainingConfig;
  private readonly model: ModelHandle;
  private readonly adaptor: ReturnType<typeof adaptorSpec>;

  constructor(options: BasicTrainerOptions) {
    this.trainConfig = parseTrainingConfig(options.trainConfig);
    this.model = options.model;
    this.adaptor = adaptorSpec(options.adaptor, "adaptor");
    if (this.adaptor.kind === "select" && !this.adaptor.keys.losses) {
      throw new Error("adaptor: BasicTrainer needs the adaptor to return 'losses', e.g. (batch, out) => ({ losses: out.loss })");
    }
  }

  train(options: LoopOptions): Promise<TrainResult> {
    const worker = sameWorker({ model: this.model }, this.trainConfig);
    return runTraining(
      {
        worker,
        student: this.model,
        plan: { student: this.model.id, adaptorS: this.adaptor, terms: [{ kind: "supervised" }] },
        trainConfig: this.trainConfig,
        configs: { trainConfig: this.trainConfig, adaptor: this.adaptor },
        feed: new DataFeed(options.data),
      },
      options,
    );
  }
}
