import type { Adaptor, AdaptorSpec } from "../adaptor/index.js";
import { isServedTeachers, type ServedTeachers } from "../service/served-teachers.js";
import type { TrainResult } from "../train/loop.js";
import type { TermSpecInput } from "../train/plan.js";
import type { ModelHandle } from "../worker/model-handle.js";
import { adaptorSpec, hardLabelTerm, kdTerm } from "./common.js";
import { DistillerBase, type DistillerBaseOptions, type TeacherPlan } from "./distiller-base.js";
import { SERVED_NOT_CACHED } from "./single-teacher.js";
import type { TrainOptions } from "./train-options.js";

export interface MultiTeacherDistillerOptions extends DistillerBaseOptions {
  /** Models in the student's worker, or a teacher service (`textbrewer-ts/service`) whose teachers are all read. */
  teachers: ModelHandle[] | ServedTeachers;
  /** One adaptor for every teacher, or one per teacher; left out with a teacher service (it applies its own). */
  adaptorT?: Adaptor | Adaptor[];
  adaptorS: Adaptor;
}

/** KD against the mean of several teachers' logits (TextBrewer's MultiTeacherDistiller; MT-DNN style). */
export class MultiTeacherDistiller extends DistillerBase {
  readonly teachers: ModelHandle[];
  readonly service: ServedTeachers | null;
  private readonly adaptorT: AdaptorSpec[];
  private readonly adaptorS: AdaptorSpec;

  constructor(options: MultiTeacherDistillerOptions) {
    super(options);
    const served = isServedTeachers(options.teachers) ? options.teachers : null;
    if (!served && !(options.teachers as ModelHandle[]).length) throw new Error("teachers: give at least one teacher");
    if (this.distillConfig.intermediateMatches.length) {
      throw new Error(
        "distillConfig.intermediateMatches: MultiTeacherDistiller runs KD only (as TextBrewer); use GeneralDistiller for matches",
      );
    }
    this.service = served;
    this.teachers = served ? [] : (options.teachers as ModelHandle[]);
    if (served) {
      if (options.adaptorT !== undefined) {
        throw new Error("adaptorT: the teacher service applies the adaptorT it was started with; leave adaptorT out of the distiller");
      }
      this.adaptorT = [...served.adaptorT];
    } else {
      if (options.adaptorT === undefined) throw new Error("adaptorT: missing; give one adaptor for every teacher, or one per teacher");
      const adaptors = Array.isArray(options.adaptorT) ? options.adaptorT : this.teachers.map(() => options.adaptorT as Adaptor);
      if (adaptors.length !== this.teachers.length) {
        throw new Error(`adaptorT: ${adaptors.length} adaptors for ${this.teachers.length} teachers; give one, or one per teacher`);
      }
      this.adaptorT = adaptors.map((a, i) => adaptorSpec(a, `adaptorT[${i}]`));
    }
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

  protected override cacheable(): { teachers: ModelHandle[]; adaptorT: AdaptorSpec[] } | string {
    if (this.service) {
      const models = this.service.teacherModels;
      return models ? { teachers: [...models], adaptorT: this.adaptorT } : SERVED_NOT_CACHED;
    }
    return { teachers: this.teachers, adaptorT: this.adaptorT };
  }

  protected override servedTeachers(): ServedTeachers | null {
    return this.service;
  }

  protected models(): Record<string, ModelHandle> {
    return Object.fromEntries(this.teachers.map((t, i) => [`teachers[${i}]`, t]));
  }
}
