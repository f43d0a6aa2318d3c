import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BasicDistiller, ConfigError, DistillCache, Tensor } from "../src/index.js";
import { compareWeights, useRealWorker } from "./helpers/fixtures.js";

const VOCAB = 40; // token logits over 40 classes stand in for a vocabulary
const DRAWS = 8;

function batches(): Array<Record<string, Tensor>> {
  return Array.from({ length: 4 }, (_, k) => ({
    input_ids: Tensor.from(
      Array.from({ length: 3 }, (_, i) => Array.from({ length: 6 }, (_, j) => BigInt(1 + ((k * 41 + i * 31 + j * 7) % 99)))),
      "int64",
    ),
    attention_mask: Tensor.from(
      Array.from({ length: 3 }, () => Array.from({ length: 6 }, () => 1n)),
      "int64",
    ),
  }));
}

function kdTerms(dir: string): number[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).terms.unweighted_kd_loss as number);
}

const logits = (_b: any, o: any) => ({ logits: o.logits });

describe("sampled teacher targets as a cache form (real worker)", () => {
  const suite = useRealWorker({
    models: {
      teacher: { arch: "BertForTokenClassification", layers: 2, numLabels: VOCAB, seed: 5, dropout: 0 },
      student: { arch: "BertForTokenClassification", layers: 1, numLabels: VOCAB, seed: 6, dropout: 0 },
    },
  });
  const { tmp, models } = suite;

  async function distil(outputDir: string, teacherCache: unknown, extra: Record<string, unknown> = {}, kdLossType = "kl") {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "token-classification" });
    const student = await suite.worker.loadModel({ path: models.student, task: "token-classification" });
    try {
      await new BasicDistiller({
        trainConfig: { outputDir, device: "cpu", seed: 3 },
        distillConfig: { kdLossType: kdLossType as never, temperature: 2 },
        teacher,
        student,
        adaptorT: logits,
        adaptorS: logits,
      }).train({ optimizer: { lr: 5e-3 }, data: batches(), numEpochs: 3, teacherCache: teacherCache as never, ...extra });
      return outputDir;
    } finally {
      await Promise.all([teacher.dispose(), student.dispose()]);
    }
  }

  it("stores int32 draws with their log-probabilities, trains from them, and resumes to the same weights", async () => {
    const dir = join(tmp.path, "sampled-cache");
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "token-classification" });
    const cache = await DistillCache.open({ teachers: teacher, adaptorT: logits, dir, samples: DRAWS, temperature: 2, dtype: "float16" });
    await cache.fill({ data: batches() });
    const record = await cache.store.getBatch(cache.store.keys(batches()[0]!));
    const [logprobs, ids] = record!;
    expect(ids!.dtype).toBe("int32");
    expect(ids!.shape).toEqual([3, 6, DRAWS]);
    expect(logprobs!.dtype).toBe("float16");
    const lp = (logprobs!.toArray() as number[][][]).flat(2);
    for (const v of lp) expect(v).toBeLessThanOrEqual(0);
    for (const id of (ids!.toArray() as number[][][]).flat(2)) expect(id >= 0 && id < VOCAB).toBe(true);
    await cache.close();
    await teacher.dispose();

    const full = await distil(join(tmp.path, "sampled-full"), { dir, samples: DRAWS, dtype: "float16" });
    const kd = kdTerms(full);
    expect(kd).toHaveLength(12);
    for (const v of kd) expect(Number.isFinite(v)).toBe(true);
    const epochMean = (e: number) => kd.slice(4 * e, 4 * e + 4).reduce((a, b) => a + b, 0) / 4;
    expect(epochMean(2)).toBeLessThan(epochMean(0));
    const counters = JSON.parse(readFileSync(join(full, "metrics.jsonl"), "utf8").trim().split("\n").at(-1)!).counters;
    expect(counters.teacherForwards).toBe(0); // every batch learnt from the filled cache

    const resumed = await distil(
      join(tmp.path, "sampled-resumed"),
      { dir, samples: DRAWS, dtype: "float16" },
      { resumeFrom: join(full, "gs4") },
    );
    const diff = await compareWeights(
      join(full, "gs12", "model", "model.safetensors"),
      join(resumed, "gs12", "model", "model.safetensors"),
    );
    expect(diff.maxDiff).toBe(0);
  });

  it("write-through fills the sampled form while training, and a second run reads it without the teacher", async () => {
    const dir = join(tmp.path, "sampled-write-through");
    const first = await distil(join(tmp.path, "wt-first"), { dir, samples: DRAWS }, {}, "token_kl");
    const second = await distil(join(tmp.path, "wt-second"), { dir, samples: DRAWS }, {}, "token_kl");
    const last = (d: string) => JSON.parse(readFileSync(join(d, "metrics.jsonl"), "utf8").trim().split("\n").at(-1)!).counters;
    expect(last(first).teacherForwards).toBe(4); // epoch 1 ran the teacher, later epochs read the cache
    expect(last(second).teacherForwards).toBe(0);
    // a miss trains on the teacher's full distribution (as with top-k); the cached epochs on the stored draws
    for (const v of [...kdTerms(first), ...kdTerms(second)]) expect(Number.isFinite(v)).toBe(true);
    expect(kdTerms(second)[0]).not.toBe(kdTerms(first)[0]);
  });

  it("refuses a loss without a sampled form, and topK with samples, before any step", async () => {
    const run = distil(join(tmp.path, "refused"), { samples: DRAWS }, {}, "reverse_kl");
    await expect(run).rejects.toThrow(ConfigError);
    await expect(run).rejects.toThrow(/kdLossType: 'reverse_kl' cannot learn from sampled teacher targets \(teacherCache.samples: 8\)/);
    await expect(distil(join(tmp.path, "both"), { samples: DRAWS, topK: 4 })).rejects.toThrow(
      "teacherCache: topK (4) and samples (8) are two sparse forms; keep one of them",
    );
  });
});
