import { type DistillerOptions, SingleTeacherDistiller } from "./general-distiller.js";

/** KD on logits (ce or mse, temperature) plus hard-label losses (TextBrewer's BasicDistiller). */
export class BasicDistiller extends SingleTeacherDistiller {
  protected readonly withMatches = false;
  protected readonly requireLogits = true;

  constructor(options: DistillerOptions) {
    super(options);
    if (this.distillConfig.intermediateMatches.length) {
      throw new Error(
        "distillConfig.intermediateMatches: BasicDistiller does not run matches (TextBrewer ignores them silently); use GeneralDistiller",
      );
    }
  }
}
