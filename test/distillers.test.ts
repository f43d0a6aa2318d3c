import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TaskSampler } from "../src/distillers/multi-task-distiller.js";
import {
  ConfigError,
  EMDDistiller,
  GeneralDistiller,
  MultiTaskDistiller,
  MultiTeacherDistiller,
  registerLoss,
  Tensor,
  WorkerError,
} from "../src/index.js";
import { batchJson, makeTinyBert, runReference, useRealWorker } from "./helpers/fixtures.js";

function ids(seed: number, n: number, len: number, vocab = 100): Tensor {
  return Tensor.from(
    Array.from({ length: n }, (_, i) => Array.from({ length: len }, (_, j) => BigInt(1 + ((seed * 17 + i * 7 + j * 13) % (vocab - 1))))),
    "int64",
  );
}
function mask(n: number, len: number): Tensor {
  return Tensor.from(
    Array.from({ length: n }, (_, i) => Array.from({ length: len }, (_, j) => (j < len - (i % 3) ? 1n : 0n))),
    "int64",
  );
}
function batch(seed: number, n = 4, len = 8, vocab = 100): Record<string, Tensor> {
  return {
    input_ids: ids(seed, n, len, vocab),
    attention_mask: mask(n, len),
    labels: Tensor.from(
      Array.from({ length: n }, (_, i) => BigInt((seed + i) % 3)),
      "int64",
    ),
  };
}
function metrics(dir: string): Array<{ step: number; terms: Record<string, number>; total: number }> {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}
const full = (b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });

describe("distillers (real worker)", () => {
  const suite = useRealWorker({
    models: {
      teacher48: { layers: 4, hidden: 48, seed: 1, dropout: 0 },
      student32: { layers: 2, hidden: 32, seed: 2, dropout: 0 },
    },
  });
  const { tmp } = suite;

  it("GeneralDistiller: one step with hidden_mse + mmd matches and a projection equals a plain PyTorch step (1e-6)", async () => {
    const t = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const b = batch(5);
    const outputDir = join(tmp.path, "general-one");
    await new GeneralDistiller({
      trainConfig: { outputDir, device: "cpu", seed: 11 },
      distillConfig: {
        temperature: 3,
        hardLabelWeight: 0.5,
        intermediateMatches: [
          { layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 2, proj: ["linear", 32, 48] },
          { layerT: [0, 4], layerS: [0, 2], feature: "hidden", loss: "mmd", weight: 1 },
        ],
      },
      teacher: t,
      student: s,
      adaptorT: full,
      adaptorS: full,
    }).train({ optimizer: { lr: 1e-3 }, data: [b], numEpochs: 1 });
    const [line] = metrics(outputDir);
    const ref = JSON.parse(
      await runReference("general_distiller_step.py", [
        JSON.stringify({
          t: suite.models.teacher48,
          s: suite.models.student32,
          ckpt: join(outputDir, "gs1"),
          batch: batchJson(b),
        }),
      ]),
    );
    expect(line!.terms.unweighted_kd_loss).toBeCloseTo(ref.kd, 6);
    expect(line!.terms.unweighted_hidden_hidden_mse_2_4).toBeCloseTo(ref.hmse, 6);
    expect(line!.terms["unweighted_hidden_mmd_0-2_0-4"]).toBeCloseTo(ref.mmd, 6);
    expect(line!.terms.unweighted_hard_label_loss).toBeCloseTo(ref.hard, 6);
    expect(line!.total).toBeCloseTo(ref.total, 6);
    expect(ref.diff).toBeLessThan(1e-6);
    expect(ref.pdiff).toBeLessThan(1e-6);
    await Promise.all([t.dispose(), s.dispose()]);
  });

  it("GeneralDistiller: every logged term decreases over training", async () => {
    const t = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const outputDir = join(tmp.path, "general-many");
    await new GeneralDistiller({
      trainConfig: { outputDir, device: "cpu", seed: 3 },
      distillConfig: {
        temperature: 4,
        intermediateMatches: [
          { layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1, proj: ["linear", 32, 48, { lr: 1e-2 }] },
          { layerT: [0, 4], layerS: [0, 2], feature: "hidden", loss: "mmd", weight: 1 },
        ],
      },
      teacher: t,
      student: s,
      adaptorT: full,
      adaptorS: full,
    }).train({ optimizer: { lr: 3e-3 }, data: [batch(1), batch(2)], numEpochs: 15 });
    const lines = metrics(outputDir);
    const first = lines.slice(0, 2);
    const last = lines.slice(-2);
    for (const term of Object.keys(lines[0]!.terms)) {
      const avg = (ls: typeof lines) => ls.reduce((a, l) => a + l.terms[term]!, 0) / ls.length;
      expect(avg(last), term).toBeLessThan(avg(first));
    }
    await Promise.all([t.dispose(), s.dispose()]);
  });

  it("preflight names the fix for a width mismatch and an out-of-range layer", async () => {
    const t = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const run = (m: object) =>
      new GeneralDistiller({
        trainConfig: { outputDir: join(tmp.path, "preflight"), device: "cpu" },
        distillConfig: { intermediateMatches: [m as never] },
        teacher: t,
        student: s,
        adaptorT: full,
        adaptorS: full,
      }).train({ optimizer: { lr: 1e-3 }, data: [batch(1)], numEpochs: 1 });
    await expect(run({ layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 })).rejects.toThrow(
      /add proj: \["linear", 32, 48\]/,
    );
    await expect(run({ layerT: 9, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1, proj: ["linear", 32, 48] })).rejects.toThrow(
      /layerT.*out of range.*5 entries/s,
    );
    await expect(run({ layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1, proj: ["linear", 30, 48] })).rejects.toThrow(
      /proj: dimS is 30/,
    );
    await Promise.all([t.dispose(), s.dispose()]);
  });

  it("MultiTeacherDistiller: the KD target is the mean of the teachers' logits", async () => {
    const t2 = await makeTinyBert(join(tmp.path, "teacherB"), { layers: 2, hidden: 32, seed: 9, dropout: 0 });
    const a = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const b2 = await suite.worker.loadModel({ path: t2, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const b = batch(7);
    const outputDir = join(tmp.path, "multi-teacher");
    await new MultiTeacherDistiller({
      trainConfig: { outputDir, device: "cpu" },
      distillConfig: { temperature: 0.01 },
      teachers: [a, b2],
      student: s,
      adaptorT: (_b: any, o: any) => ({ logits: o.logits }),
      adaptorS: (_b: any, o: any) => ({ logits: o.logits }),
    }).train({ optimizer: { lr: 1e-4 }, data: [b], numEpochs: 1 });
    const ref = JSON.parse(
      await runReference("multi_teacher_kd.py", [
        JSON.stringify({
          teachers: [suite.models.teacher48, t2],
          s: suite.models.student32,
          batch: batchJson(b),
        }),
      ]),
    );
    const [line] = metrics(outputDir);
    expect(line!.terms.unweighted_kd_loss).toBeCloseTo(ref.mean, 4);
    expect(Math.abs(ref.mean - ref.first)).toBeGreaterThan(1e-2);
    await Promise.all([a.dispose(), b2.dispose(), s.dispose()]);
  });

  it("MultiTaskDistiller: trains one student from a teacher per task", async () => {
    const t1 = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const t2 = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const outputDir = join(tmp.path, "multi-task");
    const seen: string[] = [];
    const result = await new MultiTaskDistiller({
      trainConfig: { outputDir, device: "cpu", ckptSteps: 3, seed: 1 },
      teachers: { a: t1, b: t2 },
      student: s,
      adaptorT: { a: (_b: any, o: any) => ({ logits: o.logits }), b: (_b: any, o: any) => ({ logits: o.logits }) },
      adaptorS: { a: (_b: any, o: any) => ({ logits: o.logits }), b: (_b: any, o: any) => ({ logits: o.logits }) },
    }).train({
      optimizer: { lr: 1e-4 },
      data: { a: [batch(1), batch(2), batch(3)], b: [batch(4)] },
      numSteps: 6,
      batchPostprocessors: {
        a: (x) => {
          seen.push("a");
          return x;
        },
        b: (x) => {
          seen.push("b");
          return x;
        },
      },
    });
    expect(result.globalStep).toBe(6);
    expect(result.checkpoints.map((c) => c.split("/").pop())).toEqual(["gs3", "gs6"]);
    expect(seen.length).toBe(6);
    await Promise.all([t1.dispose(), t2.dispose(), s.dispose()]);
  });

  it("split batches: teacher and student with different vocabularies and lengths", async () => {
    const smallVocab = await makeTinyBert(join(tmp.path, "student-vocab50"), { layers: 2, vocab: 50, seed: 4, dropout: 0 });
    const t = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: smallVocab, task: "sequence-classification" });
    const split = (seed: number) => ({
      teacher: { input_ids: ids(seed, 4, 10, 100), attention_mask: mask(4, 10) },
      student: { input_ids: ids(seed, 4, 6, 50), attention_mask: mask(4, 6) },
    });
    const outputDir = join(tmp.path, "split");
    await new GeneralDistiller({
      trainConfig: { outputDir, device: "cpu" },
      teacher: t,
      student: s,
      adaptorT: (_b: any, o: any) => ({ logits: o.logits }),
      adaptorS: (_b: any, o: any) => ({ logits: o.logits }),
    }).train({ optimizer: { lr: 1e-3 }, data: [split(1), split(2)] as never, numEpochs: 2 });
    const lines = metrics(outputDir);
    expect(lines).toHaveLength(4);
    for (const l of lines) expect(Number.isFinite(l.terms.unweighted_kd_loss)).toBe(true);
    await Promise.all([t.dispose(), s.dispose()]);
  });

  it("precomputed teacherOutputs stand in for the teacher's forward", async () => {
    const t = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const b = batch(3);
    const given = Tensor.from([
      [4, 0, 0],
      [0, 4, 0],
      [0, 0, 4],
      [4, 0, 0],
    ]);
    const outputDir = join(tmp.path, "teacher-outputs");
    await new GeneralDistiller({
      trainConfig: { outputDir, device: "cpu" },
      distillConfig: { temperature: 1 },
      teacher: t,
      student: s,
      adaptorT: (_b: any, o: any) => ({ logits: o.logits }),
      adaptorS: (_b: any, o: any) => ({ logits: o.logits }),
    }).train({ optimizer: { lr: 1e-4 }, data: [{ ...b, teacherOutputs: { logits: given } }] as never, numEpochs: 1, preflight: false });
    // the reference uses the student's weights before the step
    const fresh = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const sl = (await fresh.predict(b)).logits!.toArray() as number[][];
    const g = given.toArray() as number[][];
    const kd =
      sl.reduce((acc, row, i) => {
        const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
        const gl = Math.log(g[i]!.reduce((a, v) => a + Math.exp(v), 0));
        return acc - g[i]!.reduce((a, v, j) => a + Math.exp(v - gl) * (row[j]! - lse), 0);
      }, 0) / sl.length;
    expect(metrics(outputDir)[0]!.terms.unweighted_kd_loss).toBeCloseTo(kd, 5);
    await Promise.all([t.dispose(), s.dispose(), fresh.dispose()]);
  });

  it("EMDDistiller on a 2-layer student and a 4-layer teacher: the EMD loss decreases", async () => {
    const t = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const outputDir = join(tmp.path, "emd");
    await new EMDDistiller({
      trainConfig: { outputDir, device: "cpu", seed: 2 },
      teacher: t,
      student: s,
      adaptorT: full,
      adaptorS: full,
      emd: { layerNumS: 3, layerNumT: 5, weight: 1, proj: ["linear", 32, 48] },
    }).train({ optimizer: { lr: 3e-3 }, data: [batch(1), batch(2)], numEpochs: 10 });
    const lines = metrics(outputDir);
    const emd = lines.map((l) => l.terms.unweighted_hidden_hidden_mse_emd!);
    expect(emd.every(Number.isFinite)).toBe(true);
    expect(emd.slice(-2).reduce((a, b) => a + b)).toBeLessThan(emd.slice(0, 2).reduce((a, b) => a + b));
    expect(lines[0]!.terms.unweighted_embedding_hidden_mse).toBeGreaterThan(0);
    await Promise.all([t.dispose(), s.dispose()]);
  });

  it("EMDDistiller refuses intermediateMatches, which it would not run, naming the field and the fix", async () => {
    const t = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const make = () =>
      new EMDDistiller({
        trainConfig: { outputDir: join(tmp.path, "emd-matches"), device: "cpu" },
        distillConfig: {
          intermediateMatches: [{ layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1, proj: ["linear", 32, 48] }],
        },
        teacher: t,
        student: s,
        adaptorT: full,
        adaptorS: full,
        emd: { layerNumS: 3, layerNumT: 5, proj: ["linear", 32, 48] },
      });
    expect(make).toThrow(ConfigError);
    expect(make).toThrow(
      "Invalid DistillationConfig: intermediateMatches: 1 match(es) given, but EMDDistiller pairs the layers itself through `emd` and would not run them; drop intermediateMatches, or use GeneralDistiller for fixed matches",
    );
    await Promise.all([t.dispose(), s.dispose()]);
  });

  it("custom losses registered from Python; their errors come back with the traceback", async () => {
    const file = join(tmp.path, "my_losses.py");
    writeFileSync(
      file,
      "import torch\n" +
        "def double_mse(s, t, temperature=1.0):\n    return 2 * ((s - t) ** 2).mean()\n" +
        "def broken(s, t, temperature=1.0):\n    raise ArithmeticError('custom loss exploded')\n",
    );
    registerLoss({ name: "double_mse", kind: "kd", python: `${file}:double_mse` });
    registerLoss({ name: "broken_kd", kind: "kd", python: `${file}:broken` });
    const t = await suite.worker.loadModel({ path: suite.models.teacher48, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: suite.models.student32, task: "sequence-classification" });
    const make = (kdLossType: string, dir: string) =>
      new GeneralDistiller({
        trainConfig: { outputDir: join(tmp.path, dir), device: "cpu" },
        distillConfig: { kdLossType },
        teacher: t,
        student: s,
        adaptorT: (_b: any, o: any) => ({ logits: o.logits }),
        adaptorS: (_b: any, o: any) => ({ logits: o.logits }),
      });
    await make("double_mse", "custom-ok").train({ optimizer: { lr: 1e-4 }, data: [batch(1)], numEpochs: 1 });
    expect(metrics(join(tmp.path, "custom-ok"))[0]!.terms.unweighted_kd_loss).toBeGreaterThan(0);
    const err = await make("broken_kd", "custom-broken")
      .train({ optimizer: { lr: 1e-4 }, data: [batch(1)], numEpochs: 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).traceback).toMatch(/my_losses\.py.*custom loss exploded/s);
    await Promise.all([t.dispose(), s.dispose()]);
  });
});

describe("MultiTask task sampling", () => {
  it("draws tasks ∝ size^tau within 3 standard deviations over 2,000 draws, reproducibly", async () => {
    const data = {
      a: Array.from({ length: 40 }, () => ({})),
      b: Array.from({ length: 10 }, () => ({})),
      c: Array.from({ length: 90 }, () => ({})),
    };
    for (const tau of [1, 0.5]) {
      const sampler = new TaskSampler(data as never, tau, 123);
      const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
      const order: string[] = [];
      let n = 0;
      for await (const item of sampler.epoch(0).items) {
        counts[item.task!]!++;
        order.push(item.task!);
        if (++n === 2000) break;
      }
      const w = { a: 40 ** tau, b: 10 ** tau, c: 90 ** tau };
      const sum = w.a + w.b + w.c;
      for (const k of ["a", "b", "c"] as const) {
        const p = w[k] / sum;
        expect(Math.abs(counts[k]! - 2000 * p)).toBeLessThan(3 * Math.sqrt(2000 * p * (1 - p)));
      }
      const again: string[] = [];
      for await (const item of new TaskSampler(data as never, tau, 123).epoch(0).items) {
        again.push(item.task!);
        if (again.length === 50) break;
      }
      expect(again).toEqual(order.slice(0, 50));
    }
  });
});
