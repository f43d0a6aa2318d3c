import type { TermSpecInput } from "../train/plan.js";
import { hardLabelTerm, kdTerm, matchTerms } from "./common.js";
import { SingleTeacherDistiller } from "./single-teacher.js";

export type { DistillerOptions } from "./single-teacher.js";
export { SingleTeacherDistiller } from "./single-teacher.js";

/** KD on logits plus intermediate feature matches with projections (TextBrewer's GeneralDistiller). */
export class GeneralDistiller extends SingleTeacherDistiller {
  protected terms(): TermSpecInput[] {
    const d = this.distillConfig;
    return [kdTerm(d, { required: false }), ...matchTerms(d), hardLabelTerm(d)];
  }
}
