import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  BasicDistiller,
  BasicTrainer,
  type Batch,
  ConfigError,
  NO_DECAY_GROUP,
  Tensor,
  TrainingConfig,
  WorkerError,
} from "../src/index.js";
import { plannedCheckpointSteps } from "../src/train/cadence.js";
import { batchJson, compareWeights, makeTinyBert, runReference, useRealWorker } from "./helpers/fixtures.js";

function makeBatch(seed: number, n = 4, len = 8): Record<string, Tensor> {
  const ids = Array.from({ length: n }, (_, i) => Array.from({ length: len }, (_, j) => BigInt(1 + ((seed * 31 + i * 7 + j * 13) % 99))));
  const mask = Array.from({ length: n }, (_, i) => Array.from({ length: len }, (_, j) => (j < len - (i % 3) ? 1n : 0n)));
  const labels = Array.from({ length: n }, (_, i) => BigInt((seed + i) % 3));
  return { input_ids: Tensor.from(ids, "int64"), attention_mask: Tensor.from(mask, "int64"), labels: Tensor.from(labels, "int64") };
}

/** The loss terms and final weights of test/reference/training_loop.py, the independent loop, for a job. */
async function reference(job: Record<string, unknown>, dir: string): Promise<{ weights: string; terms: Record<string, number> }> {
  const jobPath = join(dir, `job-${Date.now()}.json`);
  writeFileSync(jobPath, JSON.stringify(job));
  const weights = join(dir, `ref-${Date.now()}.safetensors`);
  const termsPath = join(dir, `ref-${Date.now()}.json`);
  await runReference("training_loop.py", [jobPath, weights, termsPath]);
  return { weights, terms: JSON.parse(readFileSync(termsPath, "utf8")) };
}

function metricsLines(
  outputDir: string,
): Array<{ step: number; total: number; terms: Record<string, number>; weighted: Record<string, number>; gradNorm: number | null }> {
  return readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

const logitsAdaptor = (_b: any, o: any) => ({ logits: o.logits, losses: o.loss });

describe("training loop (real worker)", () => {
  const suite = useRealWorker({
    models: { teacher: { layers: 4, seed: 1, dropout: 0 }, student: { layers: 2, seed: 2, dropout: 0 } },
  });
  const { tmp } = suite;

  it("one BasicDistiller step equals a plain PyTorch step (loss terms and every parameter, 1e-6)", async () => {
    const teacher = await suite.worker.loadModel({ path: suite.models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    const batch = makeBatch(1);
    const outputDir = join(tmp.path, "kd-run");
    const distiller = new BasicDistiller({
      trainConfig: { outputDir, device: "cpu" },
      distillConfig: { temperature: 2, kdLossWeight: 0.7, hardLabelWeight: 0.5 },
      teacher,
      student,
      adaptorT: logitsAdaptor,
      adaptorS: logitsAdaptor,
    });
    const result = await distiller.train({
      optimizer: { type: "AdamW", lr: 1e-3, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
      data: [batch],
      numEpochs: 1,
    });
    expect(result.globalStep).toBe(1);
    const ref = await reference(
      {
        student: suite.models.student,
        teacher: suite.models.teacher,
        batches: [batchJson(batch)],
        lr: 1e-3,
        weight_decay: 0.01,
        temperature: 2,
        kd_weight: 0.7,
        hard_weight: 0.5,
      },
      tmp.path,
    );
    const [line] = metricsLines(outputDir);
    expect(line!.terms.unweighted_kd_loss).toBeCloseTo(ref.terms.kd!, 6);
    expect(line!.terms.unweighted_hard_label_loss).toBeCloseTo(ref.terms.hard!, 6);
    expect(line!.total).toBeCloseTo(ref.terms.total!, 6);
    expect(line!.weighted.weighted_kd_loss).toBeCloseTo(0.7 * ref.terms.kd!, 6);
    const d = await compareWeights(join(outputDir, "gs1", "model", "model.safetensors"), ref.weights);
    expect(d.common).toBeGreaterThan(30);
    expect(d.maxDiff).toBeLessThan(1e-6);
    await Promise.all([teacher.dispose(), student.dispose()]);
  });

  it("one BasicTrainer step with gradient accumulation 2 and maxGradNorm equals a plain PyTorch step", async () => {
    const model = await suite.worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    const batches = [makeBatch(3), makeBatch(4)];
    const outputDir = join(tmp.path, "trainer-run");
    const trainer = new BasicTrainer({
      trainConfig: { outputDir, device: "cpu", gradientAccumulationSteps: 2 },
      model,
      adaptor: (_b: any, o: any) => ({ losses: o.loss }),
    });
    await trainer.train({
      optimizer: { type: "AdamW", lr: 5e-3, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
      data: batches,
      numEpochs: 1,
      maxGradNorm: 0.05,
    });
    const ref = await reference(
      { student: suite.models.student, batches: batches.map(batchJson), lr: 5e-3, weight_decay: 0.01, gas: 2, max_grad_norm: 0.05 },
      tmp.path,
    );
    const d = await compareWeights(join(outputDir, "gs1", "model", "model.safetensors"), ref.weights);
    expect(d.maxDiff).toBeLessThan(1e-6);
    const [line] = metricsLines(outputDir);
    expect(line!.gradNorm).toBeGreaterThan(0.05); // it was clipped
    await model.dispose();
  });

  it("steps mode accumulates across the end of a pass like a loop over the cycled data (7 batches, accumulation 2)", async () => {
    const model = await suite.worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    const batches = Array.from({ length: 7 }, (_, i) => makeBatch(20 + i, 2, 6));
    const outputDir = join(tmp.path, "steps-accumulation");
    // 5 optimizer steps = 10 micro-batches: groups (0,1) (2,3) (4,5) (6,0) (1,2), the 4th across the end of pass 0
    await new BasicTrainer({
      trainConfig: { outputDir, device: "cpu", gradientAccumulationSteps: 2, ckptSteps: 100 },
      model,
      adaptor: (_b: any, o: any) => ({ losses: o.loss }),
    }).train({
      optimizer: { type: "AdamW", lr: 5e-3, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
      data: batches,
      numSteps: 5,
      progress: false,
    });
    const ref = await reference(
      { student: suite.models.student, batches: batches.map(batchJson), lr: 5e-3, weight_decay: 0.01, gas: 2, num_steps: 5 },
      tmp.path,
    );
    const d = await compareWeights(join(outputDir, "gs5", "model", "model.safetensors"), ref.weights);
    expect(d.common).toBeGreaterThan(30);
    expect(d.maxDiff).toBeLessThan(1e-6);
    await model.dispose();
  });

  it.each([
    { ckptFrequency: 1, ckptEpochFrequency: 1, numEpochs: 2, batches: 5, gas: 1 },
    { ckptFrequency: 2, ckptEpochFrequency: 1, numEpochs: 2, batches: 5, gas: 1 },
    { ckptFrequency: 3, ckptEpochFrequency: 2, numEpochs: 3, batches: 7, gas: 2 },
  ])("saves exactly TextBrewer's epoch-mode checkpoints: %o", async (c) => {
    const model = await suite.worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    const outputDir = join(tmp.path, `cadence-${c.ckptFrequency}-${c.ckptEpochFrequency}-${c.batches}`);
    const seen: number[] = [];
    await new BasicTrainer({
      trainConfig: {
        outputDir,
        device: "cpu",
        ckptFrequency: c.ckptFrequency,
        ckptEpochFrequency: c.ckptEpochFrequency,
        gradientAccumulationSteps: c.gas,
      },
      model,
      adaptor: (_b: any, o: any) => ({ losses: o.loss }),
    }).train({
      optimizer: { lr: 1e-4 },
      data: Array.from({ length: c.batches }, (_, i) => makeBatch(i, 2, 6)),
      numEpochs: c.numEpochs,
      callback: ({ step, checkpointDir }) => {
        seen.push(step);
        expect(existsSync(join(checkpointDir, "trainer_state.json"))).toBe(true);
      },
    });
    const expected = plannedCheckpointSteps({
      mode: "epochs",
      numBatches: c.batches,
      gradientAccumulationSteps: c.gas,
      numEpochs: c.numEpochs,
      ckptFrequency: c.ckptFrequency,
      ckptEpochFrequency: c.ckptEpochFrequency,
    });
    expect(seen).toEqual(expected);
    const dirs = readdirSync(outputDir)
      .filter((d) => /^gs\d+$/.test(d))
      .map((d) => Number(d.slice(2)))
      .sort((a, b) => a - b);
    expect(dirs).toEqual(expected);
    await model.dispose();
  });

  it("saves every ckptSteps and at the end in steps mode, cycling the data", async () => {
    const model = await suite.worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    const outputDir = join(tmp.path, "steps-mode");
    const seen: number[] = [];
    const r = await new BasicTrainer({
      trainConfig: { outputDir, device: "cpu", ckptSteps: 4 },
      model,
      adaptor: (_b: any, o: any) => ({ losses: o.loss }),
    }).train({
      optimizer: { lr: 1e-4 },
      data: [makeBatch(1, 2, 6), makeBatch(2, 2, 6), makeBatch(3, 2, 6)],
      numSteps: 10,
      callback: ({ step }) => void seen.push(step),
    });
    expect(r.globalStep).toBe(10);
    expect(seen).toEqual([4, 8, 10]);
    await model.dispose();
  });

  it("reports how long the worker waited for the script: workerIdleMs in metrics.jsonl", async () => {
    const model = await suite.worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    const run = async (name: string, delayMs: number): Promise<number[]> => {
      async function* feed(): AsyncGenerator<Batch> {
        for (let i = 0; i < 4; i++) {
          if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
          yield makeBatch(i, 2, 6);
        }
      }
      const outputDir = join(tmp.path, name);
      await new BasicTrainer({
        trainConfig: { outputDir, device: "cpu", ckptSteps: 100 },
        model,
        adaptor: (_b: any, o: any) => ({ losses: o.loss }),
      }).train({
        optimizer: { lr: 1e-4 },
        data: () => feed(),
        numSteps: 4,
        progress: false,
      });
      return metricsLines(outputDir).map((l) => (l as unknown as { workerIdleMs: number }).workerIdleMs);
    };
    const slowFeed = await run("idle-slow", 1200);
    expect(slowFeed).toHaveLength(4);
    // a feed that sleeps 1.2 s before each batch leaves the worker waiting for most of that time after each step
    // (the margin is wide: on an oversubscribed machine even a tiny model's step can take a few hundred ms)
    for (const ms of slowFeed.slice(1)) expect(ms).toBeGreaterThan(300);
    const fastFeed = await run("idle-fast", 0);
    for (const ms of fastFeed) expect(ms).toBeGreaterThanOrEqual(0);
    expect(Math.max(...fastFeed.slice(1))).toBeLessThan(Math.min(...slowFeed.slice(1)));
    await model.dispose();
  });

  it("resumes after the first checkpoint and ends with weights identical to an uninterrupted run", async () => {
    const dropTeacher = await makeTinyBert(join(tmp.path, "teacher-dropout"), { layers: 4, seed: 5 });
    const dropStudent = await makeTinyBert(join(tmp.path, "student-dropout"), { layers: 2, seed: 6 });
    const data = Array.from({ length: 4 }, (_, i) => makeBatch(10 + i));
    const run = async (outputDir: string, stopAt?: number, resume?: string) => {
      const teacher = await suite.worker.loadModel({ path: dropTeacher, task: "sequence-classification" });
      const student = await suite.worker.loadModel({ path: dropStudent, task: "sequence-classification" });
      try {
        return await new BasicDistiller({
          trainConfig: { outputDir, device: "cpu", seed: 7, ckptFrequency: 2 },
          distillConfig: { temperature: 4, hardLabelWeight: 0.3, kdLossWeightScheduler: "linear_decay" },
          teacher,
          student,
          adaptorT: logitsAdaptor,
          adaptorS: logitsAdaptor,
        }).train({
          optimizer: { lr: 2e-3, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
          scheduler: { type: "linear", warmupRatio: 0.25 },
          data,
          numEpochs: 2,
          ...(resume ? { resumeFrom: resume } : {}),
          callback: ({ step }) => {
            if (step === stopAt) throw new Error("stop here");
          },
        });
      } finally {
        await Promise.all([teacher.dispose(), student.dispose()]);
      }
    };
    const full = join(tmp.path, "resume-full");
    await run(full);
    const split = join(tmp.path, "resume-split");
    await expect(run(split, 2)).rejects.toThrow("stop here");
    expect(existsSync(join(split, "gs2", "model", "model.safetensors"))).toBe(true); // the checkpoint before the throw stays
    expect(existsSync(join(split, "gs4"))).toBe(false);
    await run(split, undefined, "latest");
    const d = await compareWeights(join(full, "gs8", "model", "model.safetensors"), join(split, "gs8", "model", "model.safetensors"));
    expect(d.maxDiff).toBe(0);
    const fullLines = metricsLines(full);
    const splitLines = metricsLines(split);
    expect(splitLines.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(splitLines.map((l) => l.total)).toEqual(fullLines.map((l) => l.total));
  });

  it("writes TensorBoard event files with TextBrewer's tags and the learning rate when logDir is set", async () => {
    const teacher = await suite.worker.loadModel({ path: suite.models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    const logDir = join(tmp.path, "tb");
    await new BasicDistiller({
      trainConfig: { outputDir: join(tmp.path, "tb-run"), logDir, device: "cpu" },
      teacher,
      student,
      adaptorT: logitsAdaptor,
      adaptorS: logitsAdaptor,
    }).train({ optimizer: { lr: 1e-4 }, data: [makeBatch(1), makeBatch(2)], numEpochs: 1 });
    const tags = await runReference("tensorboard_tags.py", [logDir]);
    expect(tags.trim().split(" ")).toEqual([
      "scalar/total_loss",
      "scalar/unweighted_hard_label_loss",
      "scalar/unweighted_kd_loss",
      "train/lr",
    ]);
    await Promise.all([teacher.dispose(), student.dispose()]);
  });

  it("names the field in config, adaptor and data errors", async () => {
    expect(() => TrainingConfig.parse({ ckpt_frequency: 2 })).toThrow(ConfigError);
    expect(() => TrainingConfig.parse({ gradientAccumulationSteps: 0 })).toThrow(/gradientAccumulationSteps/);
    const teacher = await suite.worker.loadModel({ path: suite.models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    expect(
      () => new BasicDistiller({ teacher, student, adaptorT: (_b: any, o: any) => ({ logits: o.logits * 2 }), adaptorS: logitsAdaptor }),
    ).toThrow(/adaptorT.*select/s);
    expect(
      () => new BasicDistiller({ teacher, student, adaptorT: logitsAdaptor, adaptorS: (_b: any, o: any) => ({ logit: o.logits }) }),
    ).toThrow(/logit/);
    const typo = new BasicDistiller({
      trainConfig: { outputDir: join(tmp.path, "typo-run"), device: "cpu" },
      teacher,
      student,
      adaptorT: (_b: any, o: any) => ({ logits: o.logitz }),
      adaptorS: logitsAdaptor,
    });
    const err = await typo.train({ optimizer: { lr: 1e-4 }, data: [makeBatch(1)], numEpochs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).message).toMatch(/logitz/);
    const noEpochs = new BasicDistiller({
      trainConfig: { outputDir: join(tmp.path, "x"), device: "cpu" },
      teacher,
      student,
      adaptorT: logitsAdaptor,
      adaptorS: logitsAdaptor,
    });
    await expect(noEpochs.train({ optimizer: { lr: 1e-4 }, data: [makeBatch(1)] })).rejects.toThrow(/numEpochs/);
    await expect(noEpochs.train({ optimizer: { lr: -1 }, data: [makeBatch(1)], numEpochs: 1 })).rejects.toThrow(/optimizer.*lr/s);
    async function* once(): AsyncGenerator<Batch> {
      yield makeBatch(1);
    }
    await expect(noEpochs.train({ optimizer: { lr: 1e-4 }, data: once(), numEpochs: 1 })).rejects.toThrow(/number of batches/);
    await Promise.all([teacher.dispose(), student.dispose()]);
  });
});
