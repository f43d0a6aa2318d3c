/** Resume from every checkpoint of a run ends with the uninterrupted run's weights, bit for bit; train() options are checked. */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BasicTrainer, ConfigError, type LoopOptions, MultiTaskDistiller, Tensor } from "../src/index.js";
import { compareWeights, makeTinyBert, useRealWorker } from "./helpers/fixtures.js";

function makeBatch(seed: number): Record<string, Tensor> {
  const ids = Array.from({ length: 2 }, (_, i) => Array.from({ length: 6 }, (_, j) => BigInt(1 + ((seed * 31 + i * 7 + j * 13) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1n)),
      "int64",
    ),
    labels: Tensor.from([BigInt(seed % 3), BigInt((seed + 1) % 3)], "int64"),
  };
}

async function maxDiff(a: string, b: string): Promise<number> {
  const r = await compareWeights(a, b);
  expect(r.common).toBeGreaterThan(30);
  return r.maxDiff;
}

const checkpointSteps = (dir: string): number[] =>
  readdirSync(dir)
    .filter((d) => /^gs\d+$/.test(d))
    .map((d) => Number(d.slice(2)))
    .sort((a, b) => a - b);

describe("exact resume at every position (real worker)", () => {
  // dropout on: a resumed run matches only if the RNG state is restored too
  const suite = useRealWorker({ models: { student: { layers: 2, seed: 6 } } });
  const { tmp, models } = suite;

  async function train(outputDir: string, trainConfig: Record<string, unknown>, options: Omit<LoopOptions, "optimizer">): Promise<number> {
    const model = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    try {
      const r = await new BasicTrainer({
        trainConfig: { outputDir, device: "cpu", seed: 11, ...trainConfig },
        model,
        adaptor: (_b: any, o: any) => ({ losses: o.loss }),
      }).train({
        optimizer: { lr: 3e-3 },
        scheduler: { type: "linear", warmupSteps: 2 },
        progress: false,
        ...options,
      });
      return r.globalStep;
    } finally {
      await model.dispose();
    }
  }

  it.each([
    { name: "steps, 4 batches (gs4 ends pass 0)", batches: 4, trainConfig: { ckptSteps: 2 }, run: { numSteps: 8 }, last: 8 },
    {
      name: "steps, 3 batches, accumulation 2 (groups across passes)",
      batches: 3,
      trainConfig: { ckptSteps: 1, gradientAccumulationSteps: 2 },
      run: { numSteps: 5 },
      last: 5,
    },
    {
      name: "epochs, 5 batches, accumulation 2, two checkpoints per epoch",
      batches: 5,
      trainConfig: { ckptFrequency: 2, gradientAccumulationSteps: 2 },
      run: { numEpochs: 2 },
      last: 4,
    },
  ])("$name", async ({ batches, trainConfig, run, last }) => {
    const data = Array.from({ length: batches }, (_, i) => makeBatch(i));
    const full = join(tmp.path, `full-${batches}`);
    expect(await train(full, trainConfig, { data, ...run })).toBe(last);
    const saved = checkpointSteps(full);
    expect(saved.at(-1)).toBe(last);
    for (const step of saved.slice(0, -1)) {
      const resumed = join(tmp.path, `resumed-${batches}-from-${step}`);
      expect(await train(resumed, trainConfig, { data, ...run, resumeFrom: join(full, `gs${step}`) })).toBe(last);
      expect(
        await maxDiff(join(full, `gs${last}`, "model", "model.safetensors"), join(resumed, `gs${last}`, "model", "model.safetensors")),
      ).toBe(0);
    }
  });

  it("resumes 'latest' after a stop at the end of a pass in steps mode", async () => {
    const data = Array.from({ length: 4 }, (_, i) => makeBatch(i));
    const outputDir = join(tmp.path, "stop-at-pass-end");
    const stop = train(
      outputDir,
      { ckptSteps: 4 },
      {
        data,
        numSteps: 8,
        callback: ({ step }) => {
          if (step === 4) throw new Error("stop here");
        },
      },
    );
    await expect(stop).rejects.toThrow("stop here");
    expect(await train(outputDir, { ckptSteps: 4 }, { data, numSteps: 8, resumeFrom: "latest" })).toBe(8);
  });

  it("MultiTaskDistiller resumes from each checkpoint with the uninterrupted run's weights", async () => {
    const teacherDir = await makeTinyBert(join(tmp.path, "teacher"), { layers: 2, seed: 7 });
    const adaptor = (_b: any, o: any) => ({ logits: o.logits, losses: o.loss });
    const data = { a: [makeBatch(1), makeBatch(2)], b: [makeBatch(3), makeBatch(4), makeBatch(5)] };
    const run = async (outputDir: string, resumeFrom?: string): Promise<void> => {
      const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
      const teacher = await suite.worker.loadModel({ path: teacherDir, task: "sequence-classification" });
      try {
        await new MultiTaskDistiller({
          trainConfig: { outputDir, device: "cpu", seed: 5, ckptSteps: 2, gradientAccumulationSteps: 2 },
          teachers: { a: teacher, b: teacher },
          adaptorT: { a: adaptor, b: adaptor },
          adaptorS: { a: adaptor, b: adaptor },
          student,
        }).train({ optimizer: { lr: 2e-3 }, data, numSteps: 6, progress: false, ...(resumeFrom ? { resumeFrom } : {}) });
      } finally {
        await Promise.all([student.dispose(), teacher.dispose()]);
      }
    };
    const full = join(tmp.path, "mt-full");
    await run(full);
    expect(checkpointSteps(full)).toEqual([2, 4, 6]);
    for (const step of [2, 4]) {
      const resumed = join(tmp.path, `mt-from-${step}`);
      await run(resumed, join(full, `gs${step}`));
      expect(await maxDiff(join(full, "gs6", "model", "model.safetensors"), join(resumed, "gs6", "model", "model.safetensors"))).toBe(0);
    }
  });

  it("refuses numEpochs/numSteps that are not positive integers and misspelt keys, naming the field and the fix", async () => {
    const data = [makeBatch(1)];
    const outputDir = join(tmp.path, "bad-options");
    const rejects = async (options: Record<string, unknown>): Promise<ConfigError> => {
      const err = await train(outputDir, { ckptSteps: 1 }, { data, ...options } as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    };
    expect((await rejects({ numEpochs: Number.NaN })).message).toMatch(/numEpochs: received NaN; expected an integer/);
    expect((await rejects({ numEpochs: 0.5 })).message).toMatch(/numEpochs: received 0\.5; expected an integer/);
    expect((await rejects({ numEpochs: 0 })).message).toMatch(/numEpochs: received 0; expected an integer > 0/);
    expect((await rejects({ numSteps: -2 })).message).toMatch(/numSteps: received -2; expected an integer > 0/);
    expect((await rejects({ numEpoch: 2 })).message).toMatch(/unknown key 'numEpoch' in train options \(did you mean 'numEpochs'\?\)/);
    expect((await rejects({ numEpochs: 1, onNonFinite: "ignore" })).message).toMatch(
      /onNonFinite: received "ignore"; expected one of "raise", "skip"/,
    );
    expect(existsSync(join(outputDir, "gs1"))).toBe(false);
  });
});
