import type { TermSpecInput } from "../train/plan.js";
import { hardLabelTerm, kdTerm } from "./common.js";
import { type DistillerOptions, SingleTeacherDistiller } from "./single-teacher.js";

/** KD on logits (ce or mse, temperature) plus hard-label losses (TextBrewer's BasicDistiller). */
export class BasicDistiller extends SingleTeacherDistiller {
  constructor(options: DistillerOptions) {
    super(options);
    if (this.distillConfig.intermediateMatches.length) {
      throw new Error(
        "distillConfig.intermediateMatches: BasicDistiller does not run matches (TextBrewer ignores them silently); use GeneralDistiller",
      );
    }
  }

  protected terms(): TermSpecInput[] {
    const d = this.distillConfig;
    return [kdTerm(d, { required: true }), hardLabelTerm(d)];
  }
}
