import type { Adaptor, AdaptorSpec } from "../adaptor/index.js";
import type { TrainResult } from "../train/loop.js";
import type { TermSpecInput } from "../train/plan.js";
import type { ModelHandle } from "../worker/model-handle.js";
import { adaptorSpec, hardLabelTerm, kdTerm } from "./common.js";
import { DistillerBase, type DistillerBaseOptions, type TeacherPlan } from "./distiller-base.js";
import type { TrainOptions } from "./train-options.js";

export interface MultiTeacherDistillerOptions extends DistillerBaseOptions {
  teachers: ModelHandle[];
  /** One adaptor for every teacher, or one per teacher. */
  adaptorT: Adaptor | Adaptor[];
  adaptorS: Adaptor;
}

/** KD against the mean of several teachers' logits (TextBrewer's MultiTeacherDistiller; MT-DNN style). */
export class MultiTeacherDistiller extends DistillerBase {
  readonly teachers: ModelHandle[];
  private readonly adaptorT: AdaptorSpec[];
  private readonly adaptorS: AdaptorSpec;

  constructor(options: MultiTeacherDistillerOptions) {
    super(options);
    if (!options.teachers.length) throw new Error("teachers: give at least one teacher");
    if (this.distillConfig.intermediateMatches.length) {
      throw new Error(
        "distillConfig.intermediateMatches: MultiTeacherDistiller runs KD only (as TextBrewer); use GeneralDistiller for matches",
      );
    }
    this.teachers = options.teachers;
    const adaptors = Array.isArray(options.adaptorT) ? options.adaptorT : options.teachers.map(() => options.adaptorT as Adaptor);
    if (adaptors.length !== options.teachers.length) {
      throw new Error(`adaptorT: ${adaptors.length} adaptors for ${options.teachers.length} teachers; give one, or one per teacher`);
    }
    this.adaptorT = adaptors.map((a, i) => adaptorSpec(a, `adaptorT[${i}]`));
    this.adaptorS = adaptorSpec(options.adaptorS, "adaptorS");
  }

  /** Distils with the shared loop; resolves when training ends (see TrainOptions). */
  train(options: TrainOptions): Promise<TrainResult> {
    return this.run(options);
  }

  protected terms(): TermSpecInput[] {
    const d = this.distillConfig;
    return [kdTerm(d, { required: true }), hardLabelTerm(d)];
  }

  protected teacherPlan(): TeacherPlan {
    return { teachers: this.teachers.map((t) => t.id), adaptorT: this.adaptorT, adaptorS: this.adaptorS };
  }

  protected override cacheable(): { teachers: ModelHandle[]; adaptorT: AdaptorSpec[] } {
    return { teachers: this.teachers, adaptorT: this.adaptorT };
  }

  protected models(): Record<string, ModelHandle> {
    return Object.fromEntries(this.teachers.map((t, i) => [`teachers[${i}]`, t]));
  }
}
