/**
 * The objective as a list of terms: a term kind defined in a test (Python) and a distiller composed with it
 * (TypeScript); term parameters (match and EMD projections, a new term's own) saved and resumed generically; the
 * plan schema's errors.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hardLabelTerm, kdTerm, matchTerms } from "../src/distillers/common.js";
import { SingleTeacherDistiller } from "../src/distillers/single-teacher.js";
import { ConfigError, type DistillationConfigInput, EMDDistiller, Tensor, WorkerError } from "../src/index.js";
import { parsePlan, type TermSpecInput } from "../src/train/plan.js";
import { compareWeights, runPython, useRealWorker } from "./helpers/fixtures.js";

function batch(seed: number): Record<string, Tensor> {
  const ids = Array.from({ length: 3 }, (_, i) => Array.from({ length: 7 }, (_, j) => BigInt(1 + ((seed * 29 + i * 11 + j * 5) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r, i) => r.map((_, j) => (j < 7 - i ? 1n : 0n))),
      "int64",
    ),
    labels: Tensor.from([BigInt(seed % 3), BigInt((seed + 1) % 3), BigInt((seed + 2) % 3)], "int64"),
  };
}
const adaptor = (b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });

interface Line {
  step: number;
  total: number;
  terms: Record<string, number>;
  weighted: Record<string, number>;
}
const metrics = (dir: string): Line[] =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line);

/** The tensors of a safetensors file: name → shape. */
async function tensorShapes(file: string): Promise<Record<string, number[]>> {
  return JSON.parse(
    await runPython(
      "import sys, json\nfrom safetensors.torch import load_file\n" +
        "print(json.dumps({k: list(v.shape) for k, v in load_file(sys.argv[1]).items()}))",
      [file],
    ),
  ) as Record<string, number[]>;
}

// A new term kind, written as a user would: a Term subclass registered with @term, owning a projection.
const CLS_ALIGN = `
import torch
from torch import nn
from textbrewer_worker.terms import Term, term


@term("cls_align")
class ClsAlign(Term):
    """options.scale * MSE between a projection of the student's last [CLS] hidden state and the teacher's."""

    def __init__(self, spec, index, device):
        super().__init__(spec, index, device)
        self.proj = nn.Linear(spec["options"]["dimS"], spec["options"]["dimT"]).to(device)

    def modules(self):
        return [self.proj]

    def param_groups(self):
        return [{"params": list(self.proj.parameters())}]

    def __call__(self, inputs):
        cls_S = inputs.results_S["hidden"][-1][:, 0]
        cls_T = inputs.first_T["hidden"][-1][:, 0]
        value = ((self.proj(cls_S) - cls_T) ** 2).mean() * self.spec["options"]["scale"]
        return value * self.spec["weight"], {"unweighted_cls_align": value}
`;

describe("terms (real worker)", () => {
  const suite = useRealWorker({
    models: { teacher: { layers: 3, hidden: 48, seed: 1 }, student: { layers: 2, hidden: 32, seed: 2 } },
  });
  const { tmp, models } = suite;

  /** A distiller that brings a new term: KD, the test's cls_align term, hard labels. */
  class ClsAlignDistiller extends SingleTeacherDistiller {
    static python = "";
    protected terms(): TermSpecInput[] {
      const d = this.distillConfig;
      const clsAlign: TermSpecInput = {
        kind: "registered",
        name: "cls_align",
        python: `${ClsAlignDistiller.python}:ClsAlign`,
        weight: 0.5,
        options: { dimS: 32, dimT: 48, scale: 2 },
      };
      return [kdTerm(d, { required: true }), clsAlign, hardLabelTerm(d)];
    }
  }

  /** General's matches plus EMD, composed from the built-in terms: match projection in slot 0, EMD's in 1..3. */
  class MatchAndEmdDistiller extends SingleTeacherDistiller {
    protected terms(): TermSpecInput[] {
      const d = this.distillConfig;
      const emd: TermSpecInput = { kind: "emd", layerNumS: 3, layerNumT: 4, weight: 0.7, proj: { kind: "relu", dimS: 32, dimT: 48 } };
      return [kdTerm(d, { required: false }), ...matchTerms(d), emd, hardLabelTerm(d)];
    }
  }

  async function run(kind: "cls" | "match-emd" | "emd", outputDir: string, resumeFrom?: string): Promise<void> {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    const common = {
      trainConfig: { outputDir, device: "cpu", seed: 3, ckptFrequency: 2 },
      distillConfig: {
        temperature: 2,
        hardLabelWeight: 0.3,
        intermediateMatches: [{ layerT: 3, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1.5, proj: ["linear", 32, 48] }],
      } satisfies DistillationConfigInput,
      teacher,
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    };
    try {
      const distiller =
        kind === "cls"
          ? new ClsAlignDistiller({ ...common, distillConfig: { temperature: 2, hardLabelWeight: 0.3 } })
          : kind === "match-emd"
            ? new MatchAndEmdDistiller(common)
            : new EMDDistiller({
                ...common,
                distillConfig: { hardLabelWeight: 0.3 },
                emd: { layerNumS: 3, layerNumT: 4, proj: ["tanh", 32, 48] },
              });
      await distiller.train({
        optimizer: { lr: 2e-3 },
        data: [batch(1), batch(2)],
        numEpochs: 2,
        progress: false,
        ...(resumeFrom ? { resumeFrom } : {}),
      });
    } finally {
      await Promise.all([teacher.dispose(), student.dispose()]);
    }
  }

  it("a term kind defined in Python by the test runs in a distiller that lists it: weighted, summed, trained, saved", async () => {
    const file = join(tmp.path, "cls_align.py");
    writeFileSync(file, CLS_ALIGN);
    ClsAlignDistiller.python = file;
    const dir = join(tmp.path, "cls");
    await run("cls", dir);
    const lines = metrics(dir);
    expect(lines).toHaveLength(4);
    for (const l of lines) {
      expect(Object.keys(l.terms)).toEqual(["unweighted_kd_loss", "unweighted_cls_align", "unweighted_hard_label_loss"]);
      expect(l.terms.unweighted_cls_align).toBeGreaterThan(0);
      expect(l.weighted.weighted_cls_align).toBeCloseTo(0.5 * l.terms.unweighted_cls_align!, 6);
      const sum = Object.values(l.weighted).reduce((a, b) => a + b, 0);
      expect(l.total).toBeCloseTo(sum, 5);
    }
    // the term's projection is in the optimizer (it changes between checkpoints) and in the checkpoint, slot 0
    const first = join(dir, "gs1", "projections.safetensors");
    const last = join(dir, "gs4", "projections.safetensors");
    expect(await tensorShapes(last)).toEqual({ "0.weight": [48, 32], "0.bias": [48] });
    expect((await compareWeights(first, last)).maxDiff).toBeGreaterThan(0);
  });

  it("a registered term kind the worker does not know is refused, naming the field and the fix", async () => {
    class Unknown extends SingleTeacherDistiller {
      protected terms(): TermSpecInput[] {
        return [{ kind: "registered", name: "no_such_term" }];
      }
    }
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    const err = await new Unknown({
      trainConfig: { outputDir: join(tmp.path, "unknown"), device: "cpu" },
      teacher,
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    })
      .train({ optimizer: { lr: 1e-3 }, data: [batch(1)], numEpochs: 1, progress: false })
      .catch((e: unknown) => e);
    await Promise.all([teacher.dispose(), student.dispose()]);
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).message).toMatch(
      /terms\[0\]\.name: no term kind 'no_such_term' is registered .*give python: 'file\.py:Class' with a Term subclass decorated @term\(name\)/,
    );
  });

  it.each([
    ["match projection + EMD projections", "match-emd", { "0.weight": [48, 32], "0.bias": [48], "1.0.weight": [48, 32], "3.0.bias": [48] }],
    ["EMDDistiller", "emd", { "0.0.weight": [48, 32], "2.0.bias": [48] }],
    ["a term kind defined in the test", "cls", { "0.weight": [48, 32] }],
  ] as const)("%s: resuming from a checkpoint ends with the uninterrupted run's student and term parameters", async (_name, kind, keys) => {
    const file = join(tmp.path, "cls_align.py");
    writeFileSync(file, CLS_ALIGN);
    ClsAlignDistiller.python = file;
    const full = join(tmp.path, `${kind}-full`);
    await run(kind, full);
    const shapes = await tensorShapes(join(full, "gs4", "projections.safetensors"));
    expect(shapes).toMatchObject(keys);
    // gs1 is inside the first epoch: the rest of the run needs the optimizer, RNG and term parameters restored
    const resumed = join(tmp.path, `${kind}-from-1`);
    await run(kind, resumed, join(full, "gs1"));
    for (const f of ["model/model.safetensors", "projections.safetensors"]) {
      const r = await compareWeights(join(full, "gs4", f), join(resumed, "gs4", f));
      expect(r.onlyA).toEqual([]);
      expect(r.maxDiff).toBe(0);
    }
    expect(metrics(resumed).at(-1)).toMatchObject({ total: metrics(full).at(-1)!.total });
  });
});

describe("the plan schema", () => {
  const plan = (terms: unknown[]) =>
    ({
      student: "m1",
      adaptorS: { kind: "select", keys: { logits: { from: "out", path: ["logits"] } } },
      optimizer: { lr: 1e-3 },
      terms,
    }) as never;
  const refused = (terms: unknown[]): string => {
    try {
      parsePlan(plan(terms));
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error("the plan was accepted");
  };

  it("fills the defaults of every term", () => {
    const p = parsePlan(plan([{ kind: "kd" }, { kind: "match", feature: "hidden", loss: "mmd", layerS: [0, 1], layerT: [0, 2] }]));
    expect(p.terms[0]).toEqual({
      kind: "kd",
      lossType: "ce",
      temperature: 4,
      temperatureScheduler: { type: "none" },
      probabilityShift: false,
      required: false,
      weight: 1,
      weightScheduler: "none",
    });
    expect(p.terms[1]).toMatchObject({ weight: 1, proj: null, mmdMaskedDivisor: "hidden" });
    expect(p).toMatchObject({ teachers: [], customLosses: [], gradientAccumulationSteps: 1, mixedPrecision: "no", onNonFinite: "raise" });
  });

  it("names the path, the value and what is allowed", () => {
    expect(refused([{ kind: "kd" }, { kind: "hard_label", weight: -1 }])).toBe(
      "Invalid train plan: terms[1].weight: received -1; expected a number >= 0",
    );
    expect(refused([{ kind: "kdd" }])).toBe(
      'Invalid train plan: terms[0].kind: received "kdd"; expected one of "kd", "hard_label", "supervised", "match", "emd", "registered", "causal_lm_kd"',
    );
    expect(refused([{ kind: "match", feature: "hidden", loss: "hidden_mse", layer_S: 1, layerS: 1, layerT: 2 }])).toBe(
      "Invalid train plan: unknown key 'layer_S' in train plan.terms[0] (did you mean 'layerS'?)",
    );
    expect(refused([{ kind: "match", feature: "hidden", loss: "hiden_mse", layerS: 1, layerT: 2 }])).toMatch(
      /^Invalid train plan: terms\[0\]\.loss: received "hiden_mse"; unknown match loss \(did you mean 'hidden_mse'\?\); allowed: .*hidden_mse/,
    );
    expect(refused([{ kind: "emd", layerNumS: 1, layerNumT: 3 }])).toBe(
      "Invalid train plan: terms[0].layerNumS: received 1; expected an integer >= 2",
    );
    expect(refused([])).toBe("Invalid train plan: terms: received []; expected at least 1 items");
  });
});
