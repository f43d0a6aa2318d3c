/** The named recipes as runnable units: the student, layer map and matches each implies, and that they train. */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatRecipePlan, recipePlan } from "../src/guidance/index.js";
import { GeneralDistiller, recipes } from "../src/index.js";
import type { RUNNABLE_RECIPES } from "../src/presets/index.js";
import { useRealWorker } from "./helpers/fixtures.js";

const BERT_BASE = { num_hidden_layers: 12, hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12 };

describe("recipePlan", () => {
  it("gives TextBrewer's students for a BERT-base teacher, with their layer maps and matches", () => {
    const shape = (name: (typeof RUNNABLE_RECIPES)[number]) => Object.values(recipePlan(name, BERT_BASE).studentConfig);
    expect(shape("T6")).toEqual([6, 768, 3072, 12]);
    expect(shape("T3")).toEqual([3, 768, 3072, 12]);
    expect(shape("T3_small")).toEqual([3, 384, 1536, 12]);
    expect(shape("T4_tiny")).toEqual([4, 312, 1200, 12]);
    expect(shape("T12_nano")).toEqual([12, 256, 1024, 4]);
    expect(recipePlan("T3", BERT_BASE).layerMap).toEqual([0, 1, 2]);
    expect(recipePlan("T4_tiny", BERT_BASE).layerMap).toBeNull();
    expect(recipePlan("T4_tiny", BERT_BASE).intermediateMatches).toEqual(recipes.T4_tiny.intermediateMatches);
    const theseus = recipePlan("Theseus", BERT_BASE);
    expect(theseus.theseus!.groups.at(-1)).toEqual([10, 11]);
    expect(theseus.intermediateMatches).toEqual([]);
  });

  it("scales widths and projections to a narrower teacher and prints what it implies", () => {
    const plan = recipePlan("T4_tiny", { ...BERT_BASE, hidden_size: 96, intermediate_size: 384, num_attention_heads: 4 });
    expect(plan.studentConfig).toEqual({ num_hidden_layers: 4, hidden_size: 36, intermediate_size: 152, num_attention_heads: 12 });
    expect(plan.intermediateMatches.filter((m) => m.proj).every((m) => JSON.stringify(m.proj) === '["linear",36,96]')).toBe(true);
    const text = formatRecipePlan(plan);
    expect(text).toContain("student:  4 layers, hidden 36, FFN 152, 12 heads");
    expect(text).toContain("layerMap: none");
    expect(text).toMatch(/hidden_mse +hidden S4 ↔ T12 {2}proj linear 36→96/);
    expect(text).toMatch(/mmd +hidden S\[4,4\] ↔ T\[12,12\]/);
    expect(formatRecipePlan(recipePlan("Theseus", BERT_BASE))).toContain("S6←T10-T11");
  });

  it("refuses an unknown recipe and a teacher whose layers the recipe does not index", () => {
    expect(() => recipePlan("T5" as never, BERT_BASE)).toThrow(/recipe: 'T5' is not one of T6, T3, T3_small, T4_tiny, T12_nano, Theseus/);
    expect(() => recipePlan("T3", { ...BERT_BASE, num_hidden_layers: 6 })).toThrow(/num_hidden_layers 6/);
  });
});

const SLOW = Boolean(process.env.TEXTBREWER_SLOW_TESTS);

describe.skipIf(!SLOW)("each distillation recipe trains a step from a 12-layer teacher (real worker)", () => {
  const suite = useRealWorker({ models: { teacher: { layers: 12, hidden: 48, heads: 4, dropout: 0 } }, prefix: "tbts-recipes-" });

  it.each(["T3", "T3_small", "T4_tiny", "T12_nano"] as const)("%s", async (name) => {
    const teacher = await suite.worker.loadModel({ path: suite.models.teacher });
    const plan = recipePlan(name, teacher.config!);
    const student = await suite.worker.createModel({
      config: plan.studentConfig,
      initFrom: teacher,
      ...(plan.layerMap ? { layerMap: plan.layerMap } : {}),
      warnNewWeights: false,
    });
    const adaptor = (batch: any, out: any) => ({ logits: out.logits, hidden: out.hidden_states, inputs_mask: batch.attention_mask });
    const { Tensor } = await import("../src/index.js");
    const batch = {
      input_ids: Tensor.from([[2n, 5n, 9n, 3n]], "int64"),
      attention_mask: Tensor.from([[1n, 1n, 1n, 1n]], "int64"),
    };
    const r = await new GeneralDistiller({
      trainConfig: { outputDir: join(suite.tmp.path, name), ckptEpochFrequency: 100 },
      distillConfig: { temperature: plan.temperature!, intermediateMatches: plan.intermediateMatches },
      teacher,
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    }).train({ optimizer: { lr: 1e-4 }, data: [batch], numEpochs: 1, progress: false });
    expect(r.globalStep).toBe(1);
    await Promise.all([student.dispose(), teacher.dispose()]);
  });
});
