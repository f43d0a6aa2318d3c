/**
 * The named recipes as runnable units: for a teacher's config, the student each recipe implies (shape), the teacher
 * layers it starts from (layerMap) and the matches it trains with, ready for createModel and a distiller, and a printout
 * of all three to show before training.
 *
 * TextBrewer's students are sized for a 12-layer, 768-wide BERT teacher (T6 and T3: 768 wide; T3-small 384;
 * T4-tiny 312; T12-nano 256). For a narrower teacher the widths (and the projections' sizes) scale by
 * hidden_size / 768, rounded to a multiple of the student's heads, so a recipe also runs on a small teacher; the layer
 * indices need the 12 layers. Students as wide as the teacher start from its first layers (createModel's default, as
 * TextBrewer's T3/T6 and RBT3); narrower ones cannot copy teacher layers and start from random weights (TextBrewer starts
 * them from a generally distilled model). Theseus: a 6-layer successor replacing pairs of teacher layers, with the linear
 * replacement schedule of the BERT-of-Theseus code's example (base 0.3, k = 6e-4 per step); no intermediate matches.
 */
import type { IntermediateMatchInput } from "../config/distillation-config.js";
import { type RecipeName, recipes } from "./matches.js";

export type RunnableRecipe = RecipeName | "Theseus";

/** Every runnable recipe's name. */
export const RUNNABLE_RECIPES: readonly RunnableRecipe[] = ["T6", "T3", "T3_small", "T4_tiny", "T12_nano", "Theseus"];

interface StudentShape {
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
}

/** The students of TextBrewer's README table, for a 768-wide teacher. */
const STUDENTS: Record<RunnableRecipe, StudentShape> = {
  T6: { layers: 6, hidden: 768, intermediate: 3072, heads: 12 },
  T3: { layers: 3, hidden: 768, intermediate: 3072, heads: 12 },
  T3_small: { layers: 3, hidden: 384, intermediate: 1536, heads: 12 },
  T4_tiny: { layers: 4, hidden: 312, intermediate: 1200, heads: 12 },
  T12_nano: { layers: 12, hidden: 256, intermediate: 1024, heads: 4 },
  Theseus: { layers: 6, hidden: 768, intermediate: 3072, heads: 12 },
};

export interface RecipePlan {
  name: RunnableRecipe;
  /** Config keys for createModel({ config, initFrom: teacher, layerMap }). */
  studentConfig: { num_hidden_layers: number; hidden_size: number; intermediate_size: number; num_attention_heads: number };
  /** Teacher layers the student's layers start as; null when the widths differ (random start). */
  layerMap: number[] | null;
  temperature: number | null;
  /** The recipe's intermediate matches, projections resized to this teacher (empty for Theseus). */
  intermediateMatches: IntermediateMatchInput[];
  /** Theseus only: the teacher layers [first, last] each successor layer replaces, and the schedule. */
  theseus?: { groups: [number, number][]; replacement: { type: "linear"; base: number; k: number } };
}

const TEACHER_LAYERS = 12;
const BASE_WIDTH = 768;

function scaled(width: number, ratio: number, multiple: number): number {
  return Math.max(multiple, Math.round((width * ratio) / multiple) * multiple);
}

/** The plan of recipe `name` for a teacher with this Hugging Face config (num_hidden_layers, hidden_size). */
export function recipePlan(name: RunnableRecipe, teacherConfig: Record<string, unknown>): RecipePlan {
  if (!Object.hasOwn(STUDENTS, name)) {
    throw new Error(`recipe: '${name}' is not one of ${RUNNABLE_RECIPES.join(", ")}`);
  }
  const layersT = teacherConfig.num_hidden_layers;
  const hiddenT = teacherConfig.hidden_size;
  if (layersT !== TEACHER_LAYERS || typeof hiddenT !== "number") {
    throw new Error(
      `teacher: the recipes index the layers of a ${TEACHER_LAYERS}-layer teacher, this one has num_hidden_layers ${String(layersT)} ` +
        `(hidden_size ${String(hiddenT)}); use a 12-layer teacher or build the matches with suggestLayerMap`,
    );
  }
  const s = STUDENTS[name];
  const ratio = hiddenT / BASE_WIDTH;
  const hidden = s.hidden === BASE_WIDTH ? hiddenT : scaled(s.hidden, ratio, s.heads);
  const studentConfig = {
    num_hidden_layers: s.layers,
    hidden_size: hidden,
    intermediate_size: s.hidden === BASE_WIDTH ? Number(teacherConfig.intermediate_size ?? 4 * hiddenT) : scaled(s.intermediate, ratio, 4),
    num_attention_heads: s.hidden === BASE_WIDTH ? Number(teacherConfig.num_attention_heads ?? s.heads) : s.heads,
  };
  const layerMap = hidden === hiddenT ? Array.from({ length: s.layers }, (_, i) => i) : null;
  if (name === "Theseus") {
    const groups = Array.from({ length: s.layers }, (_, i): [number, number] => [2 * i, 2 * i + 1]);
    return {
      name,
      studentConfig,
      layerMap,
      temperature: null,
      intermediateMatches: [],
      theseus: { groups, replacement: { type: "linear", base: 0.3, k: 6e-4 } },
    };
  }
  const recipe = recipes[name];
  const intermediateMatches = recipe.intermediateMatches.map((m) =>
    Array.isArray(m.proj) ? { ...m, proj: [m.proj[0], hidden, hiddenT] as ["linear", number, number] } : m,
  );
  return { name, studentConfig, layerMap, temperature: recipe.temperature, intermediateMatches };
}

const layers = (x: number | readonly number[]): string => (Array.isArray(x) ? `[${x.join(",")}]` : String(x));

/** What a recipe implies, to print before training: the student's shape, its layer map and the matches. */
export function formatRecipePlan(plan: RecipePlan): string {
  const c = plan.studentConfig;
  const lines = [
    `recipe ${plan.name}`,
    `  student:  ${c.num_hidden_layers} layers, hidden ${c.hidden_size}, FFN ${c.intermediate_size}, ${c.num_attention_heads} heads`,
    `  layerMap: ${plan.layerMap ? `[${plan.layerMap.join(", ")}] (student layer i starts as teacher layer layerMap[i])` : "none: narrower than the teacher, the layers start from random weights"}`,
  ];
  if (plan.theseus) {
    const r = plan.theseus.replacement;
    lines.push(
      `  replaces: ${plan.theseus.groups.map(([a, b], i) => `S${i + 1}←T${a}-T${b}`).join(", ")} (teacher layers, 0-based)`,
      `  schedule: replacement rate min(1, ${r.base} + ${r.k}·step); task loss only, no matches`,
    );
  } else {
    lines.push(
      `  KD:       temperature ${plan.temperature}`,
      `  matches:  ${plan.intermediateMatches.length}`,
      ...plan.intermediateMatches.map(
        (m) =>
          `    ${m.loss.padEnd(10)} ${m.feature} S${layers(m.layerS as number | number[])} ↔ T${layers(m.layerT as number | number[])}` +
          (Array.isArray(m.proj) ? `  proj ${m.proj[0]} ${m.proj[1]}→${m.proj[2]}` : ""),
      ),
    );
  }
  return lines.join("\n");
}
