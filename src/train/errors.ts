/** Errors a training run rejects with (besides the worker's and the configs'). */

export class TrainingError extends Error {
  override readonly name = "TrainingError";
}

/** A loss term went NaN or ±Inf (fp32/bf16); the step that saw it did not update the weights. */
export class NonFiniteLossError extends Error {
  override readonly name = "NonFiniteLossError";

  constructor(
    /** The optimizer step (global step, 1-based) whose loss was not finite. */
    readonly step: number,
    /** The loss terms that were not finite, e.g. ["unweighted_kd_loss"]. */
    readonly terms: readonly string[],
    /** The last checkpoint folder written or resumed from before it, or null. */
    readonly lastCheckpoint: string | null,
    options?: ErrorOptions,
  ) {
    super(
      `non-finite loss at step ${step} (${terms.join(", ")}); the weights were not updated by it. ` +
        `Last good checkpoint: ${lastCheckpoint ?? "none"}. Lower optimizer.lr, set maxGradNorm, check the data and ` +
        `the teacher's outputs, or pass onNonFinite: "skip" to skip such steps`,
      options,
    );
  }
}

/** A checkpoint could not be written; its temporary folder was removed and `latest` still names the previous one. */
export class CheckpointWriteError extends Error {
  override readonly name = "CheckpointWriteError";

  constructor(
    /** The checkpoint folder that was being written (outputDir/gs{step}). */
    readonly folder: string,
    /** Why, e.g. "no space left on device". */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`could not write checkpoint ${folder}: ${reason}; the previous checkpoint and 'latest' are unchanged`, options);
  }
}
