import { describe, expect, it } from "vitest";
import { ConfigError, DistillationConfig, suggestName, TrainingConfig } from "../src/config/index.js";
import { registerLoss } from "../src/losses/registry.js";

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("TrainingConfig", () => {
  it("has TextBrewer's defaults (device 'auto' instead of 'cuda')", () => {
    expect(TrainingConfig.parse({})).toEqual({
      gradientAccumulationSteps: 1,
      ckptFrequency: 1,
      ckptEpochFrequency: 1,
      ckptSteps: null,
      logDir: null,
      outputDir: "./saved_models",
      device: "auto",
      fp16: false,
      fp16OptLevel: "O1",
      dataParallel: false,
      localRank: -1,
      mixedPrecision: "no",
      seed: null,
    });
    expect(TrainingConfig.defaults()).toEqual(TrainingConfig.parse({}));
  });

  it("accepts the device forms", () => {
    for (const device of ["auto", "cpu", "cuda", "cuda:1", "mps"]) {
      expect(TrainingConfig.parse({ device }).device).toBe(device);
    }
    const e = errorOf(() => TrainingConfig.parse({ device: "gpu" }));
    expect(e.message).toContain('device: received "gpu"');
    expect(e.message).toContain('"cuda:N"');
  });

  it("maps fp16 onto mixedPrecision", () => {
    expect(TrainingConfig.parse({ fp16: true })).toMatchObject({ fp16: true, mixedPrecision: "fp16" });
    expect(TrainingConfig.parse({ mixedPrecision: "fp16" })).toMatchObject({ fp16: true, mixedPrecision: "fp16" });
    expect(TrainingConfig.parse({ mixedPrecision: "bf16" })).toMatchObject({ fp16: false, mixedPrecision: "bf16" });
    const e = errorOf(() => TrainingConfig.parse({ fp16: true, mixedPrecision: "bf16" }));
    expect(e.message).toContain("fp16");
    expect(e.message).toContain("bf16");
  });

  it("names an unknown key and suggests the right one", () => {
    const e = errorOf(() => TrainingConfig.parse({ ckpt_frequncy: 2 }));
    expect(e.message).toContain("unknown key 'ckpt_frequncy' in TrainingConfig");
    expect(e.message).toContain("did you mean 'ckptFrequency'?");
    expect(e.problems).toEqual([expect.objectContaining({ kind: "unknown_key", path: "" })]);
  });

  it("names the path, the received value and what is allowed", () => {
    const e = errorOf(() => TrainingConfig.parse({ gradientAccumulationSteps: 0, mixedPrecision: "fp32", seed: 1.5, logDir: 3 }));
    expect(e.message).toContain("gradientAccumulationSteps: received 0; expected an integer >= 1");
    expect(e.message).toContain('mixedPrecision: received "fp32"; expected one of "no", "fp16", "bf16"');
    expect(e.message).toContain("seed: received 1.5; expected an integer or null");
    expect(e.message).toContain("logDir: received 3; expected a string or null");
    expect(e.problems).toHaveLength(4);
  });

  it("safeParse returns a ConfigError instead of throwing", () => {
    const r = TrainingConfig.safeParse({ ckptSteps: 0 });
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.message).toContain("ckptSteps: received 0");
    expect(TrainingConfig.safeParse({ ckptSteps: 100 })).toMatchObject({ success: true, data: { ckptSteps: 100 } });
  });

  it("never throws a raw ZodError", () => {
    for (const bad of [null, 3, "x", [], { outputDir: "" }]) {
      expect(() => TrainingConfig.parse(bad)).toThrow(ConfigError);
    }
  });

  it("reads TextBrewer's snake_case JSON", () => {
    const json = {
      gradient_accumulation_steps: 2,
      ckpt_frequency: 2,
      ckpt_epoch_frequency: 1,
      ckpt_steps: null,
      log_dir: "runs/log",
      output_dir: "runs/out",
      device: "cpu",
      fp16: false,
      fp16_opt_level: "O1",
      data_parallel: false,
      local_rank: -1,
    };
    const camel = TrainingConfig.parse({
      gradientAccumulationSteps: 2,
      ckptFrequency: 2,
      logDir: "runs/log",
      outputDir: "runs/out",
      device: "cpu",
    });
    expect(TrainingConfig.fromTextBrewer(json)).toEqual(camel);
    expect(TrainingConfig.fromTextBrewer(JSON.stringify(json))).toEqual(camel);
  });

  it("rejects unknown and camelCase keys in TextBrewer JSON, with snake_case paths", () => {
    const e = errorOf(() => TrainingConfig.fromTextBrewer({ ckpt_frequncy: 2, outputDir: "x", local_rank: -2 }));
    expect(e.message).toContain("unknown key 'ckpt_frequncy' in TrainingConfig (did you mean 'ckpt_frequency'?)");
    expect(e.message).toContain("unknown key 'outputDir' in TrainingConfig (did you mean 'output_dir'?)");
    expect(e.message).toContain("local_rank: received -2; expected an integer >= -1");
    expect(() => TrainingConfig.fromTextBrewer("{not json")).toThrow(/not valid JSON/);
  });

  it("suggests a name for a typo, counting two swapped neighbours as one edit", () => {
    expect(suggestName("dmeo", ["test", "emd", "demo", "onnx"])).toBe("demo");
    expect(suggestName("ckptFreqeuncy", ["ckptFrequency", "ckptEpochFrequency"])).toBe("ckptFrequency");
    expect(suggestName("tmeperature", ["temperature", "temperatureScheduler"])).toBe("temperature");
    expect(suggestName("xyz", ["demo", "test"])).toBeUndefined();
    expect(suggestName("edmo", ["demo"])).toBe("demo"); // "ed" → "de": one swap
  });

  it("parses its own output to the same value", () => {
    const once = TrainingConfig.parse({ fp16: true, seed: 7, ckptSteps: 50 });
    expect(TrainingConfig.parse(once)).toEqual(once);
  });
});

const TEXTBREWER_DISTILL_JSON = {
  temperature: 8,
  hard_label_weight: 0,
  kd_loss_type: "ce",
  intermediate_matches: [
    { layer_T: 0, layer_S: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
    {
      layer_T: [0, 0],
      layer_S: [0, 0],
      feature: "hidden",
      loss: "nst",
      weight: 1,
      proj: ["linear", 384, 768, { lr: 1e-3 }],
    },
  ],
};

describe("DistillationConfig", () => {
  it("has TextBrewer's defaults", () => {
    expect(DistillationConfig.parse({})).toEqual({
      temperature: 4,
      temperatureScheduler: { type: "none" },
      hardLabelWeight: 0,
      hardLabelWeightScheduler: "none",
      kdLossType: "ce",
      kdLossWeight: 1,
      kdLossWeightScheduler: "none",
      probabilityShift: false,
      intermediateMatches: [],
      isCachingLogits: false,
      mmdMaskedDivisor: "hidden",
    });
    expect(DistillationConfig.parse({ intermediateMatches: null }).intermediateMatches).toEqual([]);
  });

  it("reads TextBrewer's snake_case JSON to the same config as the camelCase form", () => {
    const camel = DistillationConfig.parse({
      temperature: 8,
      hardLabelWeight: 0,
      kdLossType: "ce",
      intermediateMatches: [
        { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
        { layerT: [0, 0], layerS: [0, 0], feature: "hidden", loss: "nst", weight: 1, proj: ["linear", 384, 768, { lr: 1e-3 }] },
      ],
    });
    const fromJson = DistillationConfig.fromTextBrewer(TEXTBREWER_DISTILL_JSON);
    expect(fromJson).toEqual(camel);
    expect(DistillationConfig.fromTextBrewer(JSON.stringify(TEXTBREWER_DISTILL_JSON))).toEqual(camel);
    expect(fromJson.intermediateMatches).toEqual([
      { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1, proj: null },
      {
        layerT: [0, 0],
        layerS: [0, 0],
        feature: "hidden",
        loss: "nst",
        weight: 1,
        proj: { kind: "linear", dimS: 384, dimT: 768, groupOptions: { lr: 1e-3 } },
      },
    ]);
    expect(DistillationConfig.parse(fromJson)).toEqual(fromJson);
  });

  it("converts torch's snake_case projection group options", () => {
    const json = {
      intermediate_matches: [
        { layer_T: 1, layer_S: 1, feature: "hidden", loss: "hidden_mse", weight: 1, proj: ["relu", 312, 768, { weight_decay: 0.01 }] },
      ],
      hard_label_weight_scheduler: "linear_decay",
      temperature_scheduler: ["flsw", 1, 2],
      probability_shift: true,
      is_caching_logits: true,
      kd_loss_weight: 0.5,
      kd_loss_weight_scheduler: "linear_growth",
    };
    const c = DistillationConfig.fromTextBrewer(json);
    expect(c.intermediateMatches[0]?.proj).toEqual({ kind: "relu", dimS: 312, dimT: 768, groupOptions: { weightDecay: 0.01 } });
    expect(c).toMatchObject({
      hardLabelWeightScheduler: "linear_decay",
      temperatureScheduler: { type: "flsw", beta: 1, gamma: 2, eps: 1e-4 },
      probabilityShift: true,
      isCachingLogits: true,
      kdLossWeight: 0.5,
      kdLossWeightScheduler: "linear_growth",
    });
  });

  it("names unknown snake_case keys in TextBrewer JSON", () => {
    const e = errorOf(() =>
      DistillationConfig.fromTextBrewer({
        temprature: 8,
        intermediate_matches: [{ layerT: 0, layer_S: 0, feature: "hidden", loss: "hidden_mse", weight: "1" }],
      }),
    );
    expect(e.message).toContain("unknown key 'temprature' in DistillationConfig (did you mean 'temperature'?)");
    expect(e.message).toContain("unknown key 'layerT' in DistillationConfig.intermediate_matches[0] (did you mean 'layer_T'?)");
    expect(e.message).toContain('intermediate_matches[0].weight: received "1"; expected a number');
  });

  it("normalises every temperature scheduler form", () => {
    const flsw = { type: "flsw", beta: 1, gamma: 2, eps: 1e-4 };
    const cases: [unknown, unknown][] = [
      ["none", { type: "none" }],
      ["constant", { type: "constant" }],
      [["flsw", 1, 2], flsw],
      [["flsw", 1, 2, 1e-3], { ...flsw, eps: 1e-3 }],
      [["flsw", { beta: 1, gamma: 2 }], flsw],
      [{ type: "flsw", beta: 1, gamma: 2 }, flsw],
      [["cwsm", 0.5], { type: "cwsm", beta: 0.5 }],
      [["cwsm", { beta: 0.5 }], { type: "cwsm", beta: 0.5 }],
      [
        { type: "cwsm", beta: 0.5 },
        { type: "cwsm", beta: 0.5 },
      ],
      [{ type: "constant" }, { type: "constant" }],
    ];
    for (const [input, expected] of cases) {
      expect(DistillationConfig.parse({ temperatureScheduler: input }).temperatureScheduler).toEqual(expected);
    }
  });

  it("rejects a bare 'flsw'/'cwsm' and says to give the list form", () => {
    const e = errorOf(() => DistillationConfig.parse({ temperatureScheduler: "flsw" }));
    expect(e.message).toContain('temperatureScheduler: received "flsw"');
    expect(e.message).toContain("['flsw', beta, gamma]");
    expect(errorOf(() => DistillationConfig.parse({ temperatureScheduler: "cwsm" })).message).toContain("['cwsm', beta]");
    expect(errorOf(() => DistillationConfig.parse({ temperatureScheduler: ["flsw", { beta: 1 }] })).message).toContain(
      "temperatureScheduler[1].gamma: missing",
    );
    expect(errorOf(() => DistillationConfig.parse({ temperatureScheduler: ["kd", 1] })).message).toContain("temperatureScheduler[0]");
  });

  it("checks loss names against the known and registered ones", () => {
    const e = errorOf(() => DistillationConfig.parse({ kdLossType: "kld" }));
    expect(e.message).toContain("kdLossType: received \"kld\"; unknown KD loss (did you mean 'kl'?)");
    expect(e.message).toContain("allowed: ce, mse, kl, reverse_kl, jsd, tvd");
    for (const name of ["ce", "mse", "kl", "reverse_kl", "jsd", "tvd"]) {
      expect(DistillationConfig.parse({ kdLossType: name }).kdLossType).toBe(name);
    }
    expect(e.message).toContain('(add a custom one with registerLoss({ name, kind, python: "file.py:fn" }))');
    registerLoss({ name: "multi_label_bce", kind: "kd", python: "my_losses.py:bce" });
    expect(DistillationConfig.parse({ kdLossType: "multi_label_bce" }).kdLossType).toBe("multi_label_bce");

    const match = { layerT: 0, layerS: 0, feature: "hidden", weight: 1 };
    expect(errorOf(() => DistillationConfig.parse({ intermediateMatches: [{ ...match, loss: "hiden_mse" }] })).message).toContain(
      "intermediateMatches[0].loss: received \"hiden_mse\"; unknown match loss (did you mean 'hidden_mse'?)",
    );
    registerLoss({ name: "my_match", kind: "match", python: "my_losses.py:my_match" });
    // a user loss's layer form is declared in Python (@loss(layers=...)) and checked by the worker
    expect(DistillationConfig.parse({ intermediateMatches: [{ ...match, loss: "my_match" }] }).intermediateMatches).toHaveLength(1);
    expect(
      DistillationConfig.parse({ intermediateMatches: [{ ...match, loss: "my_match", layerT: [0, 1], layerS: [0, 1] }] })
        .intermediateMatches,
    ).toHaveLength(1);
    expect(() => registerLoss({ name: "hidden_mse", kind: "match", python: "my_losses.py:mine" })).toThrow(
      "registerLoss: 'hidden_mse' is a built-in match loss; give your loss another name",
    );
  });

  it("checks layer forms against the loss", () => {
    const base = { feature: "hidden", weight: 1 };
    for (const loss of ["fsp", "gram", "mmd", "nst"]) {
      const e = errorOf(() => DistillationConfig.parse({ intermediateMatches: [{ ...base, loss, layerT: 8, layerS: [2, 2] }] }));
      expect(e.message).toContain(`intermediateMatches[0].layerT: received 8; loss '${loss}' compares pairs of layers`);
    }
    const e = errorOf(() =>
      DistillationConfig.parse({ intermediateMatches: [{ ...base, loss: "hidden_mse", layerT: -1, layerS: [0, 1] }] }),
    );
    expect(e.message).toContain("intermediateMatches[0].layerS: received [0,1]; loss 'hidden_mse' takes one layer index");
    expect(
      errorOf(() => DistillationConfig.parse({ intermediateMatches: [{ ...base, loss: "nst", layerT: [0], layerS: [0, 0] }] })).message,
    ).toContain("intermediateMatches[0].layerT: received [0]; expected a layer index");
    expect(
      errorOf(() => DistillationConfig.parse({ intermediateMatches: [{ ...base, loss: "nst", layerT: [0, 1.5], layerS: [0, 0] }] }))
        .message,
    ).toContain("intermediateMatches[0].layerT[1]: received 1.5; expected an integer");
    const ok = DistillationConfig.parse({
      intermediateMatches: [{ ...base, loss: "attention_mse", feature: "attention", layerT: -1, layerS: -1 }],
    });
    expect(ok.intermediateMatches[0]?.layerT).toBe(-1);
  });

  it("validates projections", () => {
    const base = { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 };
    const parseProj = (proj: unknown) =>
      DistillationConfig.parse({ intermediateMatches: [{ ...base, proj }] }).intermediateMatches[0]?.proj;
    expect(parseProj(["tanh", 256, 768])).toEqual({ kind: "tanh", dimS: 256, dimT: 768, groupOptions: {} });
    expect(parseProj({ kind: "linear", dimS: 1, dimT: 2 })).toEqual({ kind: "linear", dimS: 1, dimT: 2, groupOptions: {} });
    expect(parseProj(null)).toBeNull();
    expect(errorOf(() => parseProj(["gelu", 256, 768])).message).toContain(
      'intermediateMatches[0].proj[0]: received "gelu"; expected one of "linear", "relu", "tanh"',
    );
    expect(errorOf(() => parseProj(["linear", -1, 768])).message).toContain(
      "intermediateMatches[0].proj[1]: received -1; expected an integer >= 1",
    );
    expect(errorOf(() => parseProj(["linear", 1, 2, { weight_decay: 0 }])).message).toContain(
      "unknown key 'weight_decay' in DistillationConfig.intermediateMatches[0].proj[3] (did you mean 'weightDecay'?)",
    );
    expect(errorOf(() => parseProj("linear")).message).toContain("[kind, dimS, dimT]");
  });

  it("reports every problem with its path", () => {
    const e = errorOf(() =>
      DistillationConfig.parse({
        temperature: 0,
        hardLabelWeightScheduler: "linear",
        intermediateMatches: [{ layerT: 0, layerS: 0, feature: "hiden", loss: "cos" }],
      }),
    );
    expect(e.problems.map((p) => p.path)).toEqual([
      "temperature",
      "hardLabelWeightScheduler",
      "intermediateMatches[0].feature",
      "intermediateMatches[0].weight",
    ]);
    expect(e.message).toContain("temperature: received 0; expected a number > 0");
    expect(e.message).toContain("intermediateMatches[0].weight: missing; expected a number");
  });
});
