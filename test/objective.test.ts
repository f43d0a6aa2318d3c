import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BasicDistiller, ConfigError, DistillCache, Tensor, Worker } from "../src/index.js";
import { makeTinyBert, runPython, tempDir } from "./helpers/fixtures.js";

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
const toJson = (b: Record<string, Tensor>) =>
  Object.fromEntries(Object.entries(b).map(([k, v]) => [k, (v.toArray() as bigint[][]).map((r) => r.map(Number))]));

describe("the objective's KD term (real worker)", () => {
  const tmp = tempDir();
  let worker: Worker;
  let tokenTeacher: string;
  let tokenStudent: string;
  let classTeacher: string;
  let classStudent: string;

  beforeAll(async () => {
    [tokenTeacher, tokenStudent, classTeacher, classStudent] = await Promise.all([
      makeTinyBert(join(tmp.path, "token-teacher"), { arch: "BertForTokenClassification", layers: 2, numLabels: 5, seed: 1, dropout: 0 }),
      makeTinyBert(join(tmp.path, "token-student"), { arch: "BertForTokenClassification", layers: 1, numLabels: 5, seed: 2, dropout: 0 }),
      makeTinyBert(join(tmp.path, "class-teacher"), { layers: 2, numLabels: 3, seed: 3, dropout: 0 }),
      makeTinyBert(join(tmp.path, "class-student"), { layers: 1, numLabels: 3, seed: 4, dropout: 0 }),
    ]);
    worker = await Worker.start({ device: "cpu" });
  });
  afterAll(async () => {
    await worker?.close();
    tmp.cleanup();
  });

  it("list logits with one logits_mask: the mask applies to every item (float64 reference)", async () => {
    const t = await worker.loadModel({ path: tokenTeacher, task: "token-classification" });
    const s = await worker.loadModel({ path: tokenStudent, task: "token-classification" });
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
      await runPython(
        `
import json, sys, torch
from transformers import AutoModelForTokenClassification as M
d = json.loads(sys.argv[1])
t = M.from_pretrained(d["t"], local_files_only=True).eval(); s = M.from_pretrained(d["s"], local_files_only=True).train()
b = {k: torch.tensor(v) for k, v in d["batch"].items()}
with torch.no_grad():
    ot, os_ = t(**b, output_hidden_states=True), s(**b, output_hidden_states=True)
keep = b["attention_mask"] != 0
total = 0.0
for ls, lt in ((os_.logits, ot.logits), (os_.hidden_states[-1], ot.hidden_states[-1])):
    ls, lt = ls[keep].double() / 2, lt[keep].double() / 2
    total += float(-(torch.softmax(lt, -1) * torch.log_softmax(ls, -1)).sum(-1).mean())
print(total)
`,
        [JSON.stringify({ t: tokenTeacher, s: tokenStudent, batch: toJson(b) })],
      ),
    );
    expect(kdTerms(outputDir)[0]).toBeCloseTo(ref, 5);
    await Promise.all([t.dispose(), s.dispose()]);
  });

  it("preflight refuses a logits_mask count that is neither 1 nor the logits count, naming both", async () => {
    const t = await worker.loadModel({ path: tokenTeacher, task: "token-classification" });
    const s = await worker.loadModel({ path: tokenStudent, task: "token-classification" });
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
      const t = await worker.loadModel({ path: classTeacher, task: "sequence-classification" });
      const s = await worker.loadModel({ path: classStudent, task: "sequence-classification" });
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

  it("top-k targets refuse a kdLossType without a sparse form before any step, naming the loss, topK and the fix", async () => {
    const t = await worker.loadModel({ path: classTeacher, task: "sequence-classification" });
    const s = await worker.loadModel({ path: classStudent, task: "sequence-classification" });
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
