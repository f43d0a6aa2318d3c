/**
 * TextBrewer's loss-weight schedulers (`hard_label_weight_scheduler`, `kd_loss_weight_scheduler`).
 *
 * TextBrewer calls them after every optimizer step with x = global_step / total_steps (total_steps is
 * num_steps, or steps_per_epoch * num_epochs) and **overwrites** the configured weight with the result: the
 * result is not multiplied by the base weight, and the very first optimizer step still uses the configured
 * value because the overwrite happens after it.
 */
export const WEIGHT_SCHEDULERS = ["none", "linear_decay", "linear_growth"] as const;
export type WeightSchedulerName = (typeof WEIGHT_SCHEDULERS)[number];

/**
 * The weight to use after the step that reached `progress` (= globalStep / totalSteps), or `null` for
 * "none": keep the configured weight.
 */
export function weightSchedule(name: WeightSchedulerName, progress: number): number | null {
  if (!Number.isFinite(progress)) throw new RangeError(`weight schedule progress must be finite, got ${progress}`);
  switch (name) {
    case "none":
      return null;
    case "linear_growth":
      return progress;
    case "linear_decay":
      return 1 - progress;
    default: {
      const unknown: never = name;
      throw new RangeError(`unknown weight scheduler '${String(unknown)}'; allowed: ${WEIGHT_SCHEDULERS.join(", ")}`);
    }
  }
}
