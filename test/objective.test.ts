import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BasicDistiller, ConfigError, DistillCache, Tensor } from "../src/index.js";
import { batchJson, runReference, useRealWorker } from "./helpers/fixtures.js";

const N = 4;
const LEN = 6;
function batch(): Record<string, Tensor> {
  return {
    input_ids: Tensor.from(
      Array.from({ length: N }, (_, i) => Array.from({ length: LEN }, (_, j) => BigInt(1 + ((i * 31 + j * 7) % 99)))),
      "int64",
    ),
    attention_mask: Tensor.from(
      Array.from({ length: N }, (_, i) => Array.from({ length: LEN }, (_, j) => (j < LEN - i ? 1n : 0n))),
      "int64",
    ),
  };
}
function kdTerms(dir: string): number[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).terms.unweighted_kd_loss as number);
}

describe("the objective's KD term (real worker)", () => {
  const suite = useRealWorker({
    models: {
      tokenTeacher: { arch: "BertForTokenClassification", layers: 2, numLabels: 5, seed: 1, dropout: 0 },
      tokenStudent: { arch: "BertForTokenClassification", layers: 1, numLabels: 5, seed: 2, dropout: 0 },
      classTeacher: { layers: 2, numLabels: 3, seed: 3, dropout: 0 },
      classStudent: { layers: 1, numLabels: 3, seed: 4, dropout: 0 },
    },
  });
  const { tmp, models } = suite;

  it("list logits with one logits_mask: the mask applies to every item (float64 reference)", async () => {
    const t = await suite.worker.loadModel({ path: models.tokenTeacher, task: "token-classification" });
    const s = await suite.worker.loadModel({ path: models.tokenStudent, task: "token-classification" });
    // two 3-D logits tensors of different widths (5 labels, 32 hidden) under one mask, as [start, end] logits would be
    const adaptor = (b: any, o: any) => ({ logits: [o.logits, o.hidden_states.at(-1)], logits_mask: b.attention_mask });
    const outputDir = join(tmp.path, "list-one-mask");
    const b = batch();
    await new BasicDistiller({
      trainConfig: { outputDir, device: "cpu" },
      distillConfig: { temperature: 2 },
      teacher: t,
      student: s,
      adaptorT: adaptor,
      adaptorS: adaptor,
    }).train({ optimizer: { lr: 1e-3 }, data: [b], numEpochs: 1 });
    const ref = Number(
      await runReference("list_logits_kd.py", [JSON.stringify({ t: models.tokenTeacher, s: models.tokenStudent, batch: batchJson(b) })]),
    );
    expect(kdTerms(outputDir)[0]).toBeCloseTo(ref, 5);
    await Promise.all([t.dispose(), s.dispose()]);
  });

  it("preflight refuses a logits_mask count that is neither 1 nor the logits count, naming both", async () => {
    const t = await suite.worker.loadModel({ path: models.tokenTeacher, task: "token-classification" });
    const s = await suite.worker.loadModel({ path: models.tokenStudent, task: "token-classification" });
    const adaptorT = (b: any, o: any) => ({ logits: [o.logits, o.hidden_states.at(-1)], logits_mask: b.attention_mask });
    const adaptorS = (b: any, o: any) => ({
      logits: [o.logits, o.hidden_states.at(-1)],
      logits_mask: [b.attention_mask, b.attention_mask, b.attention_mask],
    });
    const run = new BasicDistiller({
      trainConfig: { outputDir: join(tmp.path, "mask-count"), device: "cpu" },
      teacher: t,
      student: s,
      adaptorT,
      adaptorS,
    }).train({ optimizer: { lr: 1e-3 }, data: [batch()], numEpochs: 1 });
    await expect(run).rejects.toThrow(/logits_mask: the student adaptor gives 3 logits_mask tensors for 2 logits tensors/);
    await Promise.all([t.dispose(), s.dispose()]);
  });

  it("top-k targets with k = V train on the asked-for kdLossType 'kl' (equal to the dense run)", async () => {
    const logits = (_b: any, o: any) => ({ logits: o.logits });
    const run = async (name: string, topK: boolean) => {
      const t = await suite.worker.loadModel({ path: models.classTeacher, task: "sequence-classification" });
      const s = await suite.worker.loadModel({ path: models.classStudent, task: "sequence-classification" });
      const outputDir = join(tmp.path, name);
      const cache = topK ? await DistillCache.open({ teachers: t, adaptorT: logits, topK: 3, temperature: 2 }) : null;
      await cache?.fill({ data: [batch()] });
      await new BasicDistiller({
        trainConfig: { outputDir, device: "cpu" },
        distillConfig: { temperature: 2, kdLossType: "kl" },
        teacher: t,
        student: s,
        adaptorT: logits,
        adaptorS: logits,
      }).train({ optimizer: { lr: 1e-3 }, data: [batch(), batch()], numEpochs: 1, ...(cache ? { teacherCache: cache } : {}) });
      if (cache) {
        expect(cache.stats.cacheHits).toBe(2 * N); // both steps learnt from the stored top-k targets
        await cache.close();
      }
      await Promise.all([t.dispose(), s.dispose()]);
      return kdTerms(outputDir);
    };
    const dense = await run("kl-dense", false);
    const sparse = await run("kl-topk", true);
    expect(sparse.length).toBe(2);
    for (const [i, v] of sparse.entries()) expect(v).toBeCloseTo(dense[i]!, 6);
  });

  it("top-k targets with k = V, a bucket tail and the support of both models give token_jsd's dense value", async () => {
    const logits = (_b: any, o: any) => ({ logits: o.logits });
    const run = async (name: string, topK: boolean) => {
      const t = await suite.worker.loadModel({ path: models.classTeacher, task: "sequence-classification" });
      const s = await suite.worker.loadModel({ path: models.classStudent, task: "sequence-classification" });
      const outputDir = join(tmp.path, name);
      const cache = topK
        ? await DistillCache.open({ teachers: t, adaptorT: logits, topK: 3, temperature: 2, tail: "bucket", support: "both" })
        : null;
      await new BasicDistiller({
        trainConfig: { outputDir, device: "cpu" },
        distillConfig: { temperature: 2, kdLossType: "token_jsd" },
        teacher: t,
        student: s,
        adaptorT: logits,
        adaptorS: logits,
      }).train({ optimizer: { lr: 1e-3 }, data: [batch(), batch()], numEpochs: 1, ...(cache ? { teacherCache: cache } : {}) });
      if (cache) {
        expect(cache.stats.cacheHits).toBe(N); // the second step learnt from the top-k targets the first one stored
        await cache.close();
      }
      await Promise.all([t.dispose(), s.dispose()]);
      return kdTerms(outputDir);
    };
    const dense = await run("jsd-dense", false);
    const sparse = await run("jsd-topk-bucket", true);
    expect(sparse.length).toBe(2);
    // the terms are small (tiny models, near-uniform outputs): compare relative to their size
    for (const [i, v] of sparse.entries()) {
      expect(dense[i]!).toBeGreaterThan(0);
      expect(Math.abs(v - dense[i]!) / dense[i]!).toBeLessThan(1e-5);
    }
  });

  it("top-k targets refuse a kdLossType without a sparse form before any step, naming the loss, topK and the fix", async () => {
    const t = await suite.worker.loadModel({ path: models.classTeacher, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: models.classStudent, task: "sequence-classification" });
    const logits = (_b: any, o: any) => ({ logits: o.logits });
    for (const kdLossType of ["reverse_kl", "jsd", "tvd", "mse"]) {
      const run = new BasicDistiller({
        trainConfig: { outputDir: join(tmp.path, `refused-${kdLossType}`), device: "cpu" },
        distillConfig: { temperature: 2, kdLossType },
        teacher: t,
        student: s,
        adaptorT: logits,
        adaptorS: logits,
      }).train({ optimizer: { lr: 1e-3 }, data: [batch()], numEpochs: 1, teacherCache: { topK: 2 } });
      await expect(run).rejects.toThrow(ConfigError);
      await expect(run).rejects.toThrow(
        new RegExp(
          `kdLossType: '${kdLossType}' cannot learn from top-k teacher targets \\(teacherCache.topK: 2\\).*'ce' or 'kl'.*topK: null`,
        ),
      );
    }
    await Promise.all([t.dispose(), s.dispose()]);
  });
});
