/** Which KD losses can learn from top-k teacher targets (a teacher cache with `topK`). */
import { ConfigError } from "../config/errors.js";
import { builtinLosses } from "./catalogue.js";

/**
 * kdLossType values the worker computes on top-k targets (`sparse` in its catalogue: ce, kl, token_kl,
 * token_reverse_kl, token_jsd), completing the teacher's distribution by the cache's `tail`: "ignore" renormalises
 * the top-k, "uniform" spreads the missing mass evenly, "bucket" (token losses) keeps it as one tail entry. At k = V
 * they equal the dense loss. The others need the teacher's full distribution.
 */
export function sparseKdLossNames(): string[] {
  return builtinLosses("kd")
    .filter((l) => l.sparse)
    .map((l) => l.name);
}

/** Refuses, before any step, a kdLossType that cannot learn from top-k targets. */
export function checkSparseKdLoss(kdLossType: string, topK: number | null | undefined): void {
  const names = sparseKdLossNames();
  if (topK === null || topK === undefined || names.includes(kdLossType)) return;
  throw new ConfigError("DistillationConfig", [
    {
      path: "kdLossType",
      kind: "invalid_value",
      message:
        `'${kdLossType}' cannot learn from top-k teacher targets (teacherCache.topK: ${topK}): it needs the teacher's ` +
        `full distribution; with topK use kdLossType ${names.map((n) => `'${n}'`).join(" or ")}, ` +
        "or cache dense logits (teacherCache.topK: null)",
    },
  ]);
}

/** kdLossType values the worker computes on sampled targets (`sampled` in its catalogue): unbiased estimates. */
export function sampledKdLossNames(): string[] {
  return builtinLosses("kd")
    .filter((l) => l.sampled)
    .map((l) => l.name);
}

/** Refuses, before any step, a kdLossType that cannot learn from sampled targets (a teacher cache with `samples`). */
export function checkSampledKdLoss(kdLossType: string, samples: number | null | undefined): void {
  const names = sampledKdLossNames();
  if (samples === null || samples === undefined || names.includes(kdLossType)) return;
  throw new ConfigError("DistillationConfig", [
    {
      path: "kdLossType",
      kind: "invalid_value",
      message:
        `'${kdLossType}' cannot learn from sampled teacher targets (teacherCache.samples: ${samples}); with samples use ` +
        `kdLossType ${names.map((n) => `'${n}'`).join(" or ")}, top-k targets (teacherCache.topK) or dense logits`,
    },
  ]);
}
