/** Which KD losses can learn from top-k teacher targets (a teacher cache with `topK`). */
import { ConfigError, type ConfigProblem } from "../config/errors.js";
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
export function checkSparseKdLoss(kdLossType: string, topK: number | null | undefined, option = "teacherCache.topK"): void {
  const names = sparseKdLossNames();
  if (topK === null || topK === undefined || names.includes(kdLossType)) return;
  throw new ConfigError("DistillationConfig", [
    {
      path: "kdLossType",
      kind: "invalid_value",
      message:
        `'${kdLossType}' cannot learn from top-k teacher targets (${option}: ${topK}): it needs the teacher's ` +
        `full distribution; with topK use kdLossType ${names.map((n) => `'${n}'`).join(" or ")}, ` +
        `or dense logits (${option}: null)`,
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

/**
 * Refuses, before any step, what sparse KD targets cannot give: the top-k or sampled log-probabilities are stored or
 * sent at one temperature (a temperatureScheduler varies it), and they lack the label's entry probabilityShift swaps.
 */
export function checkSparseTargetOptions(
  d: { temperatureScheduler: { type: string }; probabilityShift: boolean },
  option: string,
  value: number,
): void {
  const t = d.temperatureScheduler.type;
  const problems: ConfigProblem[] = [];
  if (t !== "none" && t !== "constant") {
    problems.push({
      path: "temperatureScheduler",
      kind: "invalid_value",
      message: `'${t}' varies the temperature, but ${option}: ${value} gives log-probabilities at one temperature; use a constant temperature or dense logits`,
    });
  }
  if (d.probabilityShift) {
    problems.push({
      path: "probabilityShift",
      kind: "invalid_value",
      message: `true: ${option}: ${value} gives only some of the teacher's log-probabilities, so the label's cannot be swapped in; turn probabilityShift off or use dense logits`,
    });
  }
  if (problems.length) throw new ConfigError("DistillationConfig", problems);
}
