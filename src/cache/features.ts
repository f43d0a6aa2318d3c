/**
 * The teacher features a cache holds: the entries of the teacher adaptor's `hidden` / `attention` lists that the
 * intermediate matches read (their layerT), and the form they are stored in.
 */
import type { z } from "zod";
import { DistillationConfig, type IntermediateMatch, type IntermediateMatchInput } from "../config/distillation-config.js";
import type { MatchTermSpec } from "../train/plan.js";
import { FEATURE_DTYPES, type featureRef } from "../worker/ops/teacher-features.js";

export { FEATURE_DTYPES } from "../worker/ops/teacher-features.js";

/** float32, float16, or int8 with one float32 scale per row (a token's hidden vector, an attention row). */
export type FeatureDType = (typeof FEATURE_DTYPES)[number];
export type FeatureRef = z.infer<typeof featureRef>;

/** What a cache with features holds besides the logits. */
export interface FeaturePlan {
  /** In record order: sorted by feature, then layer. */
  refs: FeatureRef[];
  dtype: FeatureDType;
  /** The matches, as the fidelity report computes their losses. */
  matches: z.input<typeof MatchTermSpec>[];
}

export function checkFeatureDtype(dtype: unknown): FeatureDType {
  if (FEATURE_DTYPES.includes(dtype as FeatureDType)) return dtype as FeatureDType;
  const allowed = FEATURE_DTYPES.map((d) => `"${d}"`).join(", ");
  throw new TypeError(`teacherCache.featureDtype: ${JSON.stringify(dtype)} is not a storage form of features; allowed: ${allowed}`);
}

/** The sorted, distinct teacher entries the matches read. */
export function featureRefs(matches: readonly Pick<IntermediateMatch, "feature" | "layerT">[]): FeatureRef[] {
  const seen = new Map<string, FeatureRef>();
  for (const m of matches) {
    for (const layer of Array.isArray(m.layerT) ? m.layerT : [m.layerT])
      seen.set(refName({ feature: m.feature, layer }), { feature: m.feature, layer });
  }
  return [...seen.values()].sort((a, b) => (a.feature === b.feature ? a.layer - b.layer : a.feature < b.feature ? -1 : 1));
}

/** "hidden[2]", "attention[-1]": how refs read in manifests and messages. */
export function refName(ref: FeatureRef): string {
  return `${ref.feature}[${ref.layer}]`;
}

/** The plan of a cache opened for these matches (null without matches). */
export function featurePlan(
  intermediateMatches: readonly IntermediateMatchInput[] | undefined,
  dtype: unknown,
  mmdMaskedDivisor: "hidden" | "length" = "hidden",
): FeaturePlan | null {
  const featureDtype = checkFeatureDtype(dtype ?? "float32");
  if (!intermediateMatches?.length) return null;
  const matches = DistillationConfig.parse({ intermediateMatches }).intermediateMatches;
  return {
    refs: featureRefs(matches),
    dtype: featureDtype,
    matches: matches.map((m) => ({ kind: "match" as const, ...m, mmdMaskedDivisor })),
  };
}

/** Tensors per record that hold features (int8: rows and scales of each). */
export function featureTensorCount(plan: FeaturePlan | null): number {
  if (plan === null) return 0;
  return plan.refs.length * (plan.dtype === "int8" ? 2 : 1);
}

/** What differs between the features a cache holds and those the matches read, in words; [] when they agree. */
export function featureDifference(held: FeaturePlan | null, wanted: readonly FeatureRef[]): string[] {
  const have = new Set((held?.refs ?? []).map(refName));
  const want = new Set(wanted.map(refName));
  const missing = [...want].filter((r) => !have.has(r));
  const extra = [...have].filter((r) => !want.has(r));
  const out: string[] = [];
  if (missing.length) out.push(`the matches read ${missing.join(", ")}, which it does not hold`);
  if (extra.length) out.push(`it holds ${extra.join(", ")}, which no match reads`);
  return out;
}
