import type { Adaptor, AdaptorSpec } from "../adaptor/index.js";
import { isServedTeachers, type ServedTeachers } from "../service/served-teachers.js";
import type { TrainResult } from "../train/loop.js";
import type { ModelHandle } from "../worker/model-handle.js";
import { adaptorSpec } from "./common.js";
import { type CacheTarget, DistillerBase, type DistillerBaseOptions, type TeacherPlan } from "./distiller-base.js";
import type { TrainOptions } from "./train-options.js";

export interface DistillerOptions extends DistillerBaseOptions {
  /** A model in the student's worker, or a teacher service (`textbrewer-ts/service`) whose one teacher is read. */
  teacher: ModelHandle | ServedTeachers;
  /** The teacher adaptor; leave it out with a teacher service, which applies the one it was started with. */
  adaptorT?: Adaptor;
  adaptorS: Adaptor;
}

/** One teacher, one student; the subclass lists the terms. */
export abstract class SingleTeacherDistiller extends DistillerBase {
  readonly teacher: ModelHandle | ServedTeachers;
  protected readonly adaptorT: AdaptorSpec;
  protected readonly adaptorS: AdaptorSpec;

  constructor(options: DistillerOptions) {
    super(options);
    this.teacher = options.teacher;
    this.adaptorT = teacherAdaptor(options);
    this.adaptorS = adaptorSpec(options.adaptorS, "adaptorS");
  }

  /** Distils with the shared loop; resolves when training ends (see TrainOptions). */
  train(options: TrainOptions): Promise<TrainResult> {
    return this.run(options);
  }

  protected teacherPlan(): TeacherPlan {
    const teachers = isServedTeachers(this.teacher) ? [] : [this.teacher.id];
    return { teachers, adaptorT: [this.adaptorT], adaptorS: this.adaptorS };
  }

  protected models(): Record<string, ModelHandle> {
    return isServedTeachers(this.teacher) ? {} : { teacher: this.teacher };
  }

  protected override servedTeachers(): ServedTeachers | null {
    return isServedTeachers(this.teacher) ? this.teacher : null;
  }

  protected override cacheable(): CacheTarget | string {
    if (isServedTeachers(this.teacher)) {
      if (this.terms().some((t) => t.kind === "match")) {
        return "intermediate matches read teacher features, and a teacher service's outputs are cached as logits only";
      }
      const models = this.teacher.teacherModels;
      return models ? { teachers: [...models], adaptorT: [this.adaptorT] } : SERVED_NOT_CACHED;
    }
    // the cache then holds the teacher features the matches read too
    return { teachers: [this.teacher], adaptorT: [this.adaptorT], intermediateMatches: this.distillConfig.intermediateMatches };
  }
}

export const SERVED_NOT_CACHED =
  "the teachers live in a teacher service another script started; open the cache there (DistillCache.open({ teachers: service }))";

function teacherAdaptor(options: DistillerOptions): AdaptorSpec {
  if (!isServedTeachers(options.teacher)) {
    if (options.adaptorT === undefined) throw new Error("adaptorT: missing; give the teacher adaptor (it selects the teacher's outputs)");
    return adaptorSpec(options.adaptorT, "adaptorT");
  }
  const service = options.teacher;
  if (options.adaptorT !== undefined) {
    throw new Error("adaptorT: the teacher service applies the adaptorT it was started with; leave adaptorT out of the distiller");
  }
  if (service.teacherCount !== 1) {
    throw new Error(
      `teacher: the service at ${service.endpoint} runs ${service.teacherCount} teachers; use MultiTeacherDistiller for several`,
    );
  }
  return service.adaptorT[0]!;
}
