/**
 * The intermediate-match presets of TextBrewer's `examples/matches/matches.py` (plus `L3l_hidden_mse` from the
 * cmrc2018 example's copy), in this package's camelCase match form, and the README's distillation recipes.
 *
 * Layer numbers index the adaptor's `hidden`/`attention` lists. For a 12-layer BERT-base teacher `hidden` has 13
 * entries (0 is the embedding output), so teacher layer 12 is the last one. Every weight is 1. A name with an
 * `s` before the feature (`smmd`, `sgram`) uses the list-pair form `[k, k]` that mmd/gram compare.
 *
 * The presets are frozen; spread one (`[...presets.L3_hidden_mse]`) or read a recipe (each access returns a
 * fresh copy) to build a DistillationConfig input.
 */
import type { IntermediateMatchInput } from "../config/distillation-config.js";

export type PresetMatch = Readonly<IntermediateMatchInput>;
export type Preset = readonly PresetMatch[];

type LayerPairs = readonly (readonly [teacher: number, student: number])[];
type Proj = readonly ["linear", number, number];

const L3: LayerPairs = [
  [4, 1],
  [8, 2],
  [12, 3],
];
const L3_HIDDEN: LayerPairs = [
  [0, 0],
  [4, 1],
  [8, 2],
  [12, 3],
];
const L4: LayerPairs = [
  [3, 1],
  [6, 2],
  [9, 3],
  [12, 4],
];
const L4_HIDDEN: LayerPairs = [
  [0, 0],
  [3, 1],
  [6, 2],
  [9, 3],
  [12, 4],
];
const L6_HIDDEN: LayerPairs = [
  [0, 0],
  [2, 1],
  [4, 2],
  [6, 3],
  [8, 4],
  [10, 5],
  [12, 6],
];
const SMALL_HIDDEN: LayerPairs = [
  [0, 0],
  [2, 2],
  [4, 4],
  [6, 6],
  [8, 8],
  [10, 10],
  [12, 12],
];

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function withProj(match: IntermediateMatchInput, proj: Proj | undefined): IntermediateMatchInput {
  return proj === undefined ? match : { ...match, proj: [proj[0], proj[1], proj[2]] };
}

/** One match per pair, each on a single layer index. */
function single(pairs: LayerPairs, feature: "hidden" | "attention", loss: string, proj?: Proj): Preset {
  return deepFreeze(pairs.map(([t, s]) => withProj({ layerT: t, layerS: s, feature, loss, weight: 1 }, proj)));
}

/** One match per pair in the list-pair form: teacher [t, t] against student [s, s]. */
function paired(pairs: LayerPairs, loss: string, proj?: Proj): Preset {
  return deepFreeze(pairs.map(([t, s]) => withProj({ layerT: [t, t], layerS: [s, s], feature: "hidden", loss, weight: 1 }, proj)));
}

export const presets = Object.freeze({
  L3_attention_mse: single(L3, "attention", "attention_mse"),
  L3_attention_ce: single(L3, "attention", "attention_ce"),
  L3_attention_mse_sum: single(L3, "attention", "attention_mse_sum"),
  L3_attention_ce_mean: single(L3, "attention", "attention_ce_mean"),
  L3_hidden_mse: single(L3_HIDDEN, "hidden", "hidden_mse"),
  L3_hidden_smmd: paired(L3_HIDDEN, "mmd"),
  /** For a 384-wide 3-layer student (T3-small). */
  L3n_hidden_mse: single(L3_HIDDEN, "hidden", "hidden_mse", ["linear", 384, 768]),
  L4_attention_mse: single(L4, "attention", "attention_mse"),
  L4_attention_ce: single(L4, "attention", "attention_ce"),
  L4_attention_mse_sum: single(L4, "attention", "attention_mse_sum"),
  L4_attention_ce_mean: single(L4, "attention", "attention_ce_mean"),
  /** For a 312-wide 4-layer student (T4-tiny). */
  L4t_hidden_mse: single(L4_HIDDEN, "hidden", "hidden_mse", ["linear", 312, 768]),
  L4t_hidden_sgram: paired(L4_HIDDEN, "gram", ["linear", 312, 768]),
  L4_hidden_smmd: paired(L4_HIDDEN, "mmd"),
  L6_hidden_mse: single(L6_HIDDEN, "hidden", "hidden_mse"),
  L6_hidden_smmd: paired(L6_HIDDEN, "mmd"),
  /** For a 256-wide 12-layer student (Electra-small, T12-nano). */
  small_hidden_mse: single(SMALL_HIDDEN, "hidden", "hidden_mse", ["linear", 256, 768]),
  small_hidden_smmd: paired(SMALL_HIDDEN, "mmd"),
  /** From the cmrc2018 example: a 1024-wide 3-layer student against a 768-wide teacher. */
  L3l_hidden_mse: single(L3_HIDDEN, "hidden", "hidden_mse", ["linear", 1024, 768]),
} as const satisfies Record<string, Preset>);

export type PresetName = keyof typeof presets;

/** Every preset name (L3, L4, L6, small, then L3l_hidden_mse). */
export function presetNames(): PresetName[] {
  return Object.keys(presets) as PresetName[];
}

/** A DistillationConfig input fragment: the README's temperature and intermediate matches. */
export interface Recipe {
  temperature: number;
  intermediateMatches: IntermediateMatchInput[];
}

function copyMatch(m: PresetMatch): IntermediateMatchInput {
  const copy: IntermediateMatchInput = {
    ...m,
    layerT: Array.isArray(m.layerT) ? [m.layerT[0], m.layerT[1]] : m.layerT,
    layerS: Array.isArray(m.layerS) ? [m.layerS[0], m.layerS[1]] : m.layerS,
  };
  if (Array.isArray(m.proj)) copy.proj = m.proj.map((x) => (typeof x === "object" ? { ...x } : x)) as typeof copy.proj;
  return copy;
}

function recipe(...parts: Preset[]): Recipe {
  return { temperature: 8, intermediateMatches: parts.flat().map(copyMatch) };
}

/**
 * The README's recipes (temperature 8), for a 12-layer 768-wide teacher. Each access returns a fresh, mutable
 * object, so it can be spread into or passed as a DistillationConfig input directly.
 */
export const recipes = Object.freeze({
  /** 6-layer 768-wide student. */
  get T6(): Recipe {
    return recipe(presets.L6_hidden_mse, presets.L6_hidden_smmd);
  },
  /** 3-layer 768-wide student. */
  get T3(): Recipe {
    return recipe(presets.L3_hidden_mse, presets.L3_hidden_smmd);
  },
  /** 3-layer 384-wide student. */
  get T3_small(): Recipe {
    return recipe(presets.L3n_hidden_mse, presets.L3_hidden_smmd);
  },
  /** 4-layer 312-wide student (TinyBERT-sized). */
  get T4_tiny(): Recipe {
    return recipe(presets.L4t_hidden_mse, presets.L4_hidden_smmd);
  },
  /** 12-layer 256-wide student (Electra-small-sized). */
  get T12_nano(): Recipe {
    return recipe(presets.small_hidden_mse, presets.small_hidden_smmd);
  },
});

export type RecipeName = keyof typeof recipes;
