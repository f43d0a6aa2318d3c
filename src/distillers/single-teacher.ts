import type { Adaptor, AdaptorSpec } from "../adaptor/index.js";
import type { TrainResult } from "../train/loop.js";
import type { ModelHandle } from "../worker/model-handle.js";
import { adaptorSpec } from "./common.js";
import { type CacheTarget, DistillerBase, type DistillerBaseOptions, type TeacherPlan } from "./distiller-base.js";
import type { TrainOptions } from "./train-options.js";

export interface DistillerOptions extends DistillerBaseOptions {
  teacher: ModelHandle;
  adaptorT: Adaptor;
  adaptorS: Adaptor;
}

/** One teacher, one student; the subclass lists the terms. */
export abstract class SingleTeacherDistiller extends DistillerBase {
  readonly teacher: ModelHandle;
  protected readonly adaptorT: AdaptorSpec;
  protected readonly adaptorS: AdaptorSpec;

  constructor(options: DistillerOptions) {
    super(options);
    this.teacher = options.teacher;
    this.adaptorT = adaptorSpec(options.adaptorT, "adaptorT");
    this.adaptorS = adaptorSpec(options.adaptorS, "adaptorS");
  }

  /** Distils with the shared loop; resolves when training ends (see TrainOptions). */
  train(options: TrainOptions): Promise<TrainResult> {
    return this.run(options);
  }

  protected teacherPlan(): TeacherPlan {
    return { teachers: [this.teacher.id], adaptorT: [this.adaptorT], adaptorS: this.adaptorS };
  }

  protected models(): Record<string, ModelHandle> {
    return { teacher: this.teacher };
  }

  protected override cacheable(): CacheTarget | string {
    // the cache then holds the teacher features the matches read too
    return { teachers: [this.teacher], adaptorT: [this.adaptorT], intermediateMatches: this.distillConfig.intermediateMatches };
  }
}
