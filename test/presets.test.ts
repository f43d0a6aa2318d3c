import { describe, expect, it } from "vitest";
import { DistillationConfig, type DistillationConfigInput } from "../src/config/distillation-config.js";
import { presetNames, presets, recipes } from "../src/presets/index.js";

type Layer = number | [number, number];
interface Expected {
  feature: "hidden" | "attention";
  loss: string;
  /** (layerT, layerS) exactly as written in TextBrewer's examples/matches/matches.py. */
  pairs: [Layer, Layer][];
  proj?: ["linear", number, number];
}

// Transcribed from TextBrewer's examples/matches/matches.py (and the cmrc2018 example's copy for L3l_hidden_mse).
const EXPECTED: Record<string, Expected> = {
  L3_attention_mse: {
    feature: "attention",
    loss: "attention_mse",
    pairs: [
      [4, 1],
      [8, 2],
      [12, 3],
    ],
  },
  L3_attention_ce: {
    feature: "attention",
    loss: "attention_ce",
    pairs: [
      [4, 1],
      [8, 2],
      [12, 3],
    ],
  },
  L3_attention_mse_sum: {
    feature: "attention",
    loss: "attention_mse_sum",
    pairs: [
      [4, 1],
      [8, 2],
      [12, 3],
    ],
  },
  L3_attention_ce_mean: {
    feature: "attention",
    loss: "attention_ce_mean",
    pairs: [
      [4, 1],
      [8, 2],
      [12, 3],
    ],
  },
  L3_hidden_mse: {
    feature: "hidden",
    loss: "hidden_mse",
    pairs: [
      [0, 0],
      [4, 1],
      [8, 2],
      [12, 3],
    ],
  },
  L3_hidden_smmd: {
    feature: "hidden",
    loss: "mmd",
    pairs: [
      [
        [0, 0],
        [0, 0],
      ],
      [
        [4, 4],
        [1, 1],
      ],
      [
        [8, 8],
        [2, 2],
      ],
      [
        [12, 12],
        [3, 3],
      ],
    ],
  },
  L3n_hidden_mse: {
    feature: "hidden",
    loss: "hidden_mse",
    pairs: [
      [0, 0],
      [4, 1],
      [8, 2],
      [12, 3],
    ],
    proj: ["linear", 384, 768],
  },
  L4_attention_mse: {
    feature: "attention",
    loss: "attention_mse",
    pairs: [
      [3, 1],
      [6, 2],
      [9, 3],
      [12, 4],
    ],
  },
  L4_attention_ce: {
    feature: "attention",
    loss: "attention_ce",
    pairs: [
      [3, 1],
      [6, 2],
      [9, 3],
      [12, 4],
    ],
  },
  L4_attention_mse_sum: {
    feature: "attention",
    loss: "attention_mse_sum",
    pairs: [
      [3, 1],
      [6, 2],
      [9, 3],
      [12, 4],
    ],
  },
  L4_attention_ce_mean: {
    feature: "attention",
    loss: "attention_ce_mean",
    pairs: [
      [3, 1],
      [6, 2],
      [9, 3],
      [12, 4],
    ],
  },
  L4t_hidden_mse: {
    feature: "hidden",
    loss: "hidden_mse",
    pairs: [
      [0, 0],
      [3, 1],
      [6, 2],
      [9, 3],
      [12, 4],
    ],
    proj: ["linear", 312, 768],
  },
  L4t_hidden_sgram: {
    feature: "hidden",
    loss: "gram",
    pairs: [
      [
        [0, 0],
        [0, 0],
      ],
      [
        [3, 3],
        [1, 1],
      ],
      [
        [6, 6],
        [2, 2],
      ],
      [
        [9, 9],
        [3, 3],
      ],
      [
        [12, 12],
        [4, 4],
      ],
    ],
    proj: ["linear", 312, 768],
  },
  L4_hidden_smmd: {
    feature: "hidden",
    loss: "mmd",
    pairs: [
      [
        [0, 0],
        [0, 0],
      ],
      [
        [3, 3],
        [1, 1],
      ],
      [
        [6, 6],
        [2, 2],
      ],
      [
        [9, 9],
        [3, 3],
      ],
      [
        [12, 12],
        [4, 4],
      ],
    ],
  },
  L6_hidden_mse: {
    feature: "hidden",
    loss: "hidden_mse",
    pairs: [
      [0, 0],
      [2, 1],
      [4, 2],
      [6, 3],
      [8, 4],
      [10, 5],
      [12, 6],
    ],
  },
  L6_hidden_smmd: {
    feature: "hidden",
    loss: "mmd",
    pairs: [
      [
        [0, 0],
        [0, 0],
      ],
      [
        [2, 2],
        [1, 1],
      ],
      [
        [4, 4],
        [2, 2],
      ],
      [
        [6, 6],
        [3, 3],
      ],
      [
        [8, 8],
        [4, 4],
      ],
      [
        [10, 10],
        [5, 5],
      ],
      [
        [12, 12],
        [6, 6],
      ],
    ],
  },
  small_hidden_mse: {
    feature: "hidden",
    loss: "hidden_mse",
    pairs: [
      [0, 0],
      [2, 2],
      [4, 4],
      [6, 6],
      [8, 8],
      [10, 10],
      [12, 12],
    ],
    proj: ["linear", 256, 768],
  },
  small_hidden_smmd: {
    feature: "hidden",
    loss: "mmd",
    pairs: [
      [
        [0, 0],
        [0, 0],
      ],
      [
        [2, 2],
        [2, 2],
      ],
      [
        [4, 4],
        [4, 4],
      ],
      [
        [6, 6],
        [6, 6],
      ],
      [
        [8, 8],
        [8, 8],
      ],
      [
        [10, 10],
        [10, 10],
      ],
      [
        [12, 12],
        [12, 12],
      ],
    ],
  },
  L3l_hidden_mse: {
    feature: "hidden",
    loss: "hidden_mse",
    pairs: [
      [0, 0],
      [4, 1],
      [8, 2],
      [12, 3],
    ],
    proj: ["linear", 1024, 768],
  },
};

function expectedMatches(e: Expected): Record<string, unknown>[] {
  return e.pairs.map(([layerT, layerS]) => ({
    layerT,
    layerS,
    feature: e.feature,
    loss: e.loss,
    weight: 1,
    ...(e.proj ? { proj: e.proj } : {}),
  }));
}

describe("presets", () => {
  it("has exactly TextBrewer's preset names", () => {
    expect(presetNames().sort()).toEqual(Object.keys(EXPECTED).sort());
    expect(Object.keys(presets).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`${name} has TextBrewer's layers, loss, weights and projection`, () => {
      const preset = presets[name as keyof typeof presets];
      // toStrictEqual: no stray keys such as proj: undefined where TextBrewer has none.
      expect(preset).toStrictEqual(expectedMatches(expected));
    });

    it(`${name} parses as DistillationConfig intermediateMatches`, () => {
      const preset = presets[name as keyof typeof presets];
      const config = DistillationConfig.parse({ intermediateMatches: preset });
      expect(config.intermediateMatches).toHaveLength(expected.pairs.length);
      for (const [i, m] of config.intermediateMatches.entries()) {
        const [layerT, layerS] = expected.pairs[i]!;
        expect(m.layerT).toEqual(layerT);
        expect(m.layerS).toEqual(layerS);
        expect(m.loss).toBe(expected.loss);
        expect(m.weight).toBe(1);
        expect(m.proj).toEqual(
          expected.proj ? { kind: expected.proj[0], dimS: expected.proj[1], dimT: expected.proj[2], groupOptions: {} } : null,
        );
      }
    });
  }

  it("is frozen, so a caller cannot corrupt a preset", () => {
    expect(Object.isFrozen(presets)).toBe(true);
    expect(Object.isFrozen(presets.L3_hidden_smmd)).toBe(true);
    expect(Object.isFrozen(presets.L3_hidden_smmd[0])).toBe(true);
    expect(Object.isFrozen(presets.L3_hidden_smmd[0]!.layerT)).toBe(true);
    expect(() => {
      (presets.L3n_hidden_mse[0]!.proj as unknown as number[])[1] = 1;
    }).toThrow(TypeError);
    expect(presets.L3n_hidden_mse[0]!.proj).toEqual(["linear", 384, 768]);
  });

  it("can be spread into a typed DistillationConfig input", () => {
    const input: DistillationConfigInput = {
      intermediateMatches: [...presets.L4_attention_ce, ...presets.L4t_hidden_mse],
    };
    expect(DistillationConfig.parse(input).intermediateMatches).toHaveLength(9);
  });
});

describe("recipes", () => {
  const RECIPES: Record<string, [string, string]> = {
    T6: ["L6_hidden_mse", "L6_hidden_smmd"],
    T3: ["L3_hidden_mse", "L3_hidden_smmd"],
    T3_small: ["L3n_hidden_mse", "L3_hidden_smmd"],
    T4_tiny: ["L4t_hidden_mse", "L4_hidden_smmd"],
    T12_nano: ["small_hidden_mse", "small_hidden_smmd"],
  };

  it("has the README's five recipes", () => {
    expect(Object.keys(recipes).sort()).toEqual(Object.keys(RECIPES).sort());
  });

  for (const [name, [a, b]] of Object.entries(RECIPES)) {
    it(`${name} = ${a} + ${b} at temperature 8`, () => {
      const recipe = recipes[name as keyof typeof recipes];
      expect(recipe).toStrictEqual({
        temperature: 8,
        intermediateMatches: [...expectedMatches(EXPECTED[a]!), ...expectedMatches(EXPECTED[b]!)],
      });
      const config = DistillationConfig.parse(recipe);
      expect(config.temperature).toBe(8);
      expect(config.intermediateMatches).toHaveLength(EXPECTED[a]!.pairs.length + EXPECTED[b]!.pairs.length);
    });
  }

  it("returns a fresh mutable copy on each access, usable as a typed config input", () => {
    const r = recipes.T3;
    r.intermediateMatches.push({ layerT: 1, layerS: 1, feature: "hidden", loss: "cos", weight: 2 });
    (r.intermediateMatches[0]!.layerT as number) = 5;
    expect(recipes.T3.intermediateMatches).toHaveLength(8);
    expect(recipes.T3.intermediateMatches[0]!.layerT).toBe(0);
    expect(presets.L3_hidden_mse[0]!.layerT).toBe(0);
    const input: DistillationConfigInput = { ...recipes.T4_tiny, kdLossType: "kl" };
    const config = DistillationConfig.parse(input);
    expect(config.kdLossType).toBe("kl");
    expect(config.intermediateMatches[0]!.proj).toEqual({ kind: "linear", dimS: 312, dimT: 768, groupOptions: {} });
  });
});
