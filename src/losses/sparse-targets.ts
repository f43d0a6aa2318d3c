/** Which KD losses can learn from top-k teacher targets (a teacher cache with `topK`). */
import { ConfigError } from "../config/errors.js";

/**
 * kdLossType values the worker computes on top-k targets (its `SPARSE_KD_LOSSES`), completing the teacher's
 * distribution by the cache's `tail`: "ignore" renormalises the top-k, "uniform" spreads the missing mass evenly.
 * At k = V both equal the dense loss. The others need the teacher's full distribution.
 */
export const SPARSE_KD_LOSS_NAMES = ["ce", "kl"] as const;

/** Refuses, before any step, a kdLossType that cannot learn from top-k targets. */
export function checkSparseKdLoss(kdLossType: string, topK: number | null | undefined): void {
  if (topK === null || topK === undefined || (SPARSE_KD_LOSS_NAMES as readonly string[]).includes(kdLossType)) return;
  throw new ConfigError("DistillationConfig", [
    {
      path: "kdLossType",
      kind: "invalid_value",
      message:
        `'${kdLossType}' cannot learn from top-k teacher targets (teacherCache.topK: ${topK}): it needs the teacher's ` +
        `full distribution; with topK use kdLossType ${SPARSE_KD_LOSS_NAMES.map((n) => `'${n}'`).join(" or ")}, ` +
        "or cache dense logits (teacherCache.topK: null)",
    },
  ]);
}
