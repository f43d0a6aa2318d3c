/** A NaN/Inf loss is a decision (raise or skip), never a hang; fp16 overflow steps are logged as skipped. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BasicDistiller, BasicTrainer, type Batch, type LoopOptions, NonFiniteLossError, type StepMetrics, Tensor } from "../src/index.js";
import { compareWeights, useRealWorker } from "./helpers/fixtures.js";

function makeBatch(seed: number): Record<string, Tensor> {
  const ids = Array.from({ length: 4 }, (_, i) => Array.from({ length: 6 }, (_, j) => BigInt(1 + ((seed * 31 + i * 7 + j * 13) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1n)),
      "int64",
    ),
    labels: Tensor.from([0n, 1n, 2n, BigInt(seed % 3)], "int64"),
  };
}

/** A batch whose teacher logits are given; `bad` puts a NaN in one of them. */
function withTeacherLogits(seed: number, bad = false): Batch {
  const logits = [
    [2, 0, 0],
    [0, 2, 0],
    [0, 0, 2],
    [1, 1, 0],
  ];
  if (bad) logits[1]![2] = Number.NaN;
  return { ...makeBatch(seed), teacherOutputs: { logits: Tensor.from(logits) } } as unknown as Batch;
}

const metrics = (dir: string): StepMetrics[] =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as StepMetrics);

async function maxDiff(a: string, b: string): Promise<number> {
  return (await compareWeights(a, b)).maxDiff;
}

const logitsAdaptor = (_b: any, o: any) => ({ logits: o.logits, losses: o.loss });

describe("non-finite losses (real worker)", () => {
  const suite = useRealWorker({ models: { teacher: { layers: 2, seed: 1, dropout: 0 }, student: { layers: 2, seed: 2, dropout: 0 } } });
  const { tmp, models } = suite;

  async function distil(name: string, data: Batch[], options: Partial<LoopOptions> & { mixedPrecision?: "no" | "fp16" } = {}) {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    const outputDir = join(tmp.path, name);
    const { mixedPrecision, ...rest } = options;
    try {
      const result = await new BasicDistiller({
        trainConfig: { outputDir, device: "cpu", ckptSteps: 1, mixedPrecision: mixedPrecision ?? "no" },
        distillConfig: { temperature: 1, hardLabelWeight: 0.5 },
        teacher,
        student,
        adaptorT: (_b: any, o: any) => ({ logits: o.logits }),
        adaptorS: logitsAdaptor,
      })
        .train({ optimizer: { lr: 1e-3 }, data, numSteps: data.length, progress: false, preflight: false, ...rest })
        .catch((e: unknown) => e);
      const saved = join(tmp.path, `${name}-student-after`);
      await student.save(saved);
      return { result, outputDir, after: join(saved, "model.safetensors") };
    } finally {
      await Promise.all([teacher.dispose(), student.dispose()]);
    }
  }

  it("a NaN teacher logit rejects train() with NonFiniteLossError naming the step, the term and the last checkpoint; the weights are not updated", async () => {
    const data = [withTeacherLogits(1), withTeacherLogits(2), withTeacherLogits(3, true), withTeacherLogits(4)];
    const { result, outputDir, after } = await distil("nan-teacher", data);
    expect(result).toBeInstanceOf(NonFiniteLossError);
    const err = result as NonFiniteLossError;
    expect(err.step).toBe(3);
    expect(err.terms).toEqual(["unweighted_kd_loss"]);
    expect(err.lastCheckpoint).toBe(join(outputDir, "gs2"));
    expect(err.message).toMatch(/step 3 \(unweighted_kd_loss\).*gs2.*onNonFinite: "skip"/s);
    expect(metrics(outputDir).map((l) => l.step)).toEqual([1, 2]);
    // the in-memory student is exactly the one saved after step 2
    expect(await maxDiff(join(outputDir, "gs2", "model", "model.safetensors"), after)).toBe(0);
  });

  it("with no checkpoint yet the error says so", async () => {
    const { result } = await distil("nan-first", [withTeacherLogits(1, true), withTeacherLogits(2)]);
    expect(result).toBeInstanceOf(NonFiniteLossError);
    expect((result as NonFiniteLossError).lastCheckpoint).toBeNull();
    expect((result as NonFiniteLossError).message).toMatch(/Last good checkpoint: none/);
  });

  it('onNonFinite: "skip" skips the step without an update and counts it in metrics.jsonl', async () => {
    const data = [withTeacherLogits(1), withTeacherLogits(2), withTeacherLogits(3, true), withTeacherLogits(4)];
    const { result, outputDir } = await distil("nan-skip", data, { onNonFinite: "skip" });
    expect(result).toMatchObject({ globalStep: 4 });
    const lines = metrics(outputDir);
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(lines[2]).toMatchObject({ skipped: "non-finite", skippedSteps: 1 });
    expect(lines[2]!.nonFinite).toContain("unweighted_kd_loss");
    expect(lines[2]!.terms.unweighted_kd_loss).toBeUndefined();
    expect(lines[2]!.total).toBeNull(); // no finite total: null in the file, never a bare NaN
    expect(Number.isFinite(lines[2]!.terms.unweighted_hard_label_loss)).toBe(true);
    expect(lines[3]).toMatchObject({ skippedSteps: 1 });
    expect(lines[3]!.skipped).toBeUndefined();
    expect(Number.isFinite(lines[3]!.total)).toBe(true);
    expect(await maxDiff(join(outputDir, "gs2", "model", "model.safetensors"), join(outputDir, "gs3", "model", "model.safetensors"))).toBe(
      0,
    );
    expect(
      await maxDiff(join(outputDir, "gs3", "model", "model.safetensors"), join(outputDir, "gs4", "model", "model.safetensors")),
    ).toBeGreaterThan(0);
  });

  it("a diverging run (lr 1e6) rejects with NonFiniteLossError instead of hanging", async () => {
    const model = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    const outputDir = join(tmp.path, "diverge");
    try {
      const err = await new BasicTrainer({
        trainConfig: { outputDir, device: "cpu", ckptSteps: 100 },
        model,
        adaptor: (_b: any, o: any) => ({ losses: o.loss }),
      })
        .train({ optimizer: { lr: 1e6 }, data: [makeBatch(1), makeBatch(2), makeBatch(3)], numSteps: 10, progress: false })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NonFiniteLossError);
      expect((err as NonFiniteLossError).terms).toEqual(["total"]);
      expect((err as NonFiniteLossError).step).toBeGreaterThan(1);
    } finally {
      await model.dispose();
    }
  });

  it("fp16: a step GradScaler skips is logged as skipped with the scale, not an error", async () => {
    const data = [withTeacherLogits(1), withTeacherLogits(2, true), withTeacherLogits(3)];
    const { result, outputDir } = await distil("fp16-skip", data, { mixedPrecision: "fp16" });
    expect(result).toMatchObject({ globalStep: 3 });
    const lines = metrics(outputDir);
    expect(lines[1]).toMatchObject({ skipped: "overflow", skippedSteps: 1 });
    expect(lines[1]!.lossScale).toBe(lines[0]!.lossScale! / 2);
    expect(lines[0]!.skipped).toBeUndefined();
    expect(await maxDiff(join(outputDir, "gs1", "model", "model.safetensors"), join(outputDir, "gs2", "model", "model.safetensors"))).toBe(
      0,
    );
  });
});
