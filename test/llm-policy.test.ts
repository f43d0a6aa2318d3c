/**
 * Causal-LM distillation: the per-token average over a whole optimizer step, on-policy GKD (the student's samples
 * scored by the teacher, in the same worker, resumable), the generate op, and the evaluation callback.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError, Tensor } from "../src/index.js";
import { CausalLMDistiller, countTargetTokens, lmEvalCallback } from "../src/llm/index.js";
import { buildReport } from "../src/report/index.js";
import type { ModelHandle } from "../src/worker/model-handle.js";
import { compareWeights, runReference, useRealWorker } from "./helpers/fixtures.js";
import { lmBatch, makeTinyGpt2, randomIds } from "./helpers/tiny-gpt2.js";

const VOCAB = 40;

interface Metric {
  step: number;
  terms: Record<string, number>;
  total: number | null;
}

function metricsOf(path: string): Metric[] {
  return readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Metric);
}

describe("CausalLMDistiller options", () => {
  // the constructor only checks its options; no model is called
  const handle = { id: "m" } as unknown as ModelHandle;
  const make = (o: Partial<ConstructorParameters<typeof CausalLMDistiller>[0]>) =>
    new CausalLMDistiller({ teacher: handle, student: handle, distillConfig: { kdLossType: "token_kl" }, ...o });

  it("refuses a KD loss that is not a token loss, naming kdLossType and the allowed ones", () => {
    expect(() => make({ distillConfig: { kdLossType: "ce" } })).toThrow(ConfigError);
    expect(() => make({ distillConfig: { kdLossType: "ce" } })).toThrow(/kdLossType.*'ce' is not a token-level loss.*'token_kl'/s);
  });

  it("refuses an on-policy lambda outside [0, 1] or a missing promptLength, naming the field", () => {
    expect(() => make({ onPolicy: { lmbda: 2, promptLength: 4 } })).toThrow(/onPolicy[\s\S]*lmbda[\s\S]*2/);
    expect(() => make({ onPolicy: { lmbda: 0.5 } as never })).toThrow(/promptLength/);
    expect(make({ onPolicy: { lmbda: 0.5, promptLength: 4 } }).onPolicy).toEqual({
      lmbda: 0.5,
      promptLength: 4,
      temperature: 1,
      topP: 1,
    });
  });
});

describe("causal-LM KD", () => {
  const suite = useRealWorker({ prefix: "llm-policy-" });
  let teacher: ModelHandle;
  let studentDir: string;

  const loadStudent = async (): Promise<ModelHandle> => suite.worker.loadModel({ path: studentDir, task: "causal-lm" });

  beforeAll(async () => {
    const tmp = suite.tmp.path;
    // a peaked teacher (large initial weights) and a 1-layer student, both random
    const [teacherDir, s] = await Promise.all([
      makeTinyGpt2(join(tmp, "teacher"), { vocab: VOCAB, seed: 1, initializerRange: 0.3 }),
      makeTinyGpt2(join(tmp, "student"), { vocab: VOCAB, seed: 2, layers: 1 }),
    ]);
    studentDir = s;
    teacher = await suite.worker.loadModel({ path: teacherDir, task: "causal-lm" });
  });

  it("counts a batch's next-token targets as the worker does (labels ≠ -100, attention mask ≠ 0, shifted)", () => {
    const b = lmBatch(randomIds(2, 6, VOCAB, 1), [6, 4], 2);
    // row 0: targets at tokens 2..5 → 4; row 1: tokens 2..3 → 2
    expect(countTargetTokens(b)).toBe(6);
    expect(() => countTargetTokens({ input_ids: b.input_ids! })).toThrow(/give labels \(-100 = no target\) or an attention_mask/);
  });

  it("averages over the valid tokens of the whole step: 1×4 with accumulation 1 equals 2×2 with accumulation 2", async () => {
    const tmp = suite.tmp.path;
    // four sequences of different lengths and prompts: a mean of micro-batch means would weigh them differently
    const rows = randomIds(4, 10, VOCAB, 3);
    const lengths = [3, 10, 5, 8];
    const prompts = [1, 2, 2, 3]; // 2 + 8 targets in the first pair, 3 + 5 in the second
    const single = (i: number) => lmBatch([rows[i]!], [lengths[i]!], prompts[i]);
    const merge = (parts: Array<Record<string, Tensor>>) => {
      const cat = (k: string) =>
        Tensor.from(
          parts.flatMap((p) => p[k]!.toArray() as number[][]),
          "int64",
        );
      return { input_ids: cat("input_ids"), attention_mask: cat("attention_mask"), labels: cat("labels") };
    };
    const run = async (name: string, data: Array<Record<string, Tensor>>, gas: number): Promise<string> => {
      const student = await loadStudent();
      await new CausalLMDistiller({
        trainConfig: { outputDir: join(tmp, name), ckptFrequency: 1, gradientAccumulationSteps: gas, seed: 0 },
        distillConfig: { kdLossType: "token_kl", temperature: 2 },
        teacher,
        student,
      }).train({ optimizer: { type: "SGD", lr: 0.5 }, data, numEpochs: 1 });
      await student.dispose();
      return join(tmp, name, "gs1", "model", "model.safetensors");
    };
    const all = merge([0, 1, 2, 3].map(single));
    const a = await run("one-by-four", [all], 1);
    const b = await run("two-by-two", [merge([single(0), single(1)]), merge([single(2), single(3)])], 2);
    const base = join(suite.tmp.path, "student", "model.safetensors");
    const diff = await compareWeights(a, b);
    expect(diff.common).toBeGreaterThan(0);
    expect(diff.maxDiff).toBeLessThan(1e-6);
    expect((await compareWeights(a, base)).maxDiff).toBeGreaterThan(1e-3); // the step did move the weights
  });

  const promptBatches = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => lmBatch(randomIds(4, 12, VOCAB, seed + i), [12, 12, 12, 12]));

  it("on-policy (λ = 1): finite losses on the student's own samples, and the KL to the teacher goes down", async () => {
    const student = await loadStudent();
    const outputDir = join(suite.tmp.path, "on-policy");
    const batches = promptBatches(2, 10);
    const train = (dir: string, lambda: number) =>
      new CausalLMDistiller({
        trainConfig: { outputDir: dir, ckptSteps: 100, seed: 0 },
        distillConfig: { kdLossType: "token_kl", temperature: 1 },
        teacher,
        student,
        onPolicy: { lmbda: lambda, promptLength: 4, temperature: 1 },
      }).train({ optimizer: { type: "AdamW", lr: 3e-2 }, data: batches, numSteps: 12 });
    await train(outputDir, 1);
    const kd = metricsOf(join(outputDir, "metrics.jsonl")).map((m) => m.terms.unweighted_causal_lm_kd_loss!);
    expect(kd).toHaveLength(12);
    for (const v of kd) expect(Number.isFinite(v)).toBe(true);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(kd.slice(-3))).toBeLessThan(0.7 * mean(kd.slice(0, 3)));
    await student.dispose();
  });

  it("on-policy batches differ from the data's: λ = 1 and λ = 0 give different losses from the same start", async () => {
    const losses: number[] = [];
    for (const lambda of [0, 1]) {
      const student = await loadStudent();
      const dir = join(suite.tmp.path, `lambda-${lambda}`);
      await new CausalLMDistiller({
        trainConfig: { outputDir: dir, ckptSteps: 100, seed: 0 },
        distillConfig: { kdLossType: "token_kl", temperature: 1 },
        teacher,
        student,
        onPolicy: { lmbda: lambda, promptLength: 4 },
      }).train({ optimizer: { type: "SGD", lr: 1e-9 }, data: promptBatches(1, 20), numSteps: 1 });
      losses.push(metricsOf(join(dir, "metrics.jsonl"))[0]!.terms.unweighted_causal_lm_kd_loss!);
      await student.dispose();
    }
    expect(losses[0]).not.toBe(losses[1]);
  });

  it("an on-policy run (λ = 0.5) resumed from a checkpoint ends with the uninterrupted run's weights, bit for bit", async () => {
    const batches = promptBatches(3, 30);
    const run = async (dir: string, resumeFrom?: string): Promise<void> => {
      const student = await loadStudent();
      await new CausalLMDistiller({
        trainConfig: { outputDir: dir, ckptSteps: 2, seed: 5 },
        distillConfig: { kdLossType: "token_jsd", temperature: 1 },
        teacher,
        student,
        onPolicy: { lmbda: 0.5, promptLength: 3, temperature: 1.2, topP: 0.9 },
      }).train({ optimizer: { type: "AdamW", lr: 1e-2 }, data: batches, numSteps: 6, ...(resumeFrom ? { resumeFrom } : {}) });
      await student.dispose();
    };
    const full = join(suite.tmp.path, "resume-full");
    await run(full);
    const resumed = join(suite.tmp.path, "resume-part");
    await run(resumed);
    await run(resumed, join(resumed, "gs2"));
    const weights = (dir: string) => join(dir, "gs6", "model", "model.safetensors");
    expect((await compareWeights(weights(full), weights(resumed))).maxDiff).toBe(0);
  });

  it("generate: the same seed gives the same samples, the prompt is kept", async () => {
    const prompt = Tensor.from(randomIds(2, 3, VOCAB, 40), "int64");
    const call = (seed: number) => suite.worker.call("generate", { model: teacher.id, inputIds: prompt, maxNewTokens: 5, seed });
    const [a, b, c] = [await call(1), await call(1), await call(2)];
    expect(a.tokens.shape).toEqual([2, 8]);
    expect(a.tokens.toFlatArray()).toEqual(b.tokens.toFlatArray());
    expect(a.tokens.toFlatArray()).not.toEqual(c.tokens.toFlatArray());
    expect((a.tokens.toArray() as number[][]).map((r) => r.slice(0, 3).map(Number))).toEqual(randomIds(2, 3, VOCAB, 40));
  });

  it("the evaluation callback writes perplexity and samples to eval.json, TensorBoard and the HTML report", async () => {
    const student = await loadStudent();
    const outputDir = join(suite.tmp.path, "eval-run");
    const logDir = join(suite.tmp.path, "eval-tb");
    const heldOut = promptBatches(1, 50);
    const seen: number[] = [];
    await new CausalLMDistiller({
      trainConfig: { outputDir, ckptSteps: 2, seed: 0, logDir },
      distillConfig: { kdLossType: "token_kl", temperature: 1 },
      teacher,
      student,
    }).train({
      optimizer: { type: "AdamW", lr: 1e-2 },
      data: promptBatches(2, 60),
      numSteps: 4,
      callback: lmEvalCallback({
        heldOut,
        prompts: Tensor.from(randomIds(2, 3, VOCAB, 70), "int64"),
        maxNewTokens: 4,
        decode: (ids) => ids.map((i) => `t${i}`).join(" "),
        onResult: (r) => {
          seen.push(r.perplexity);
        },
      }),
    });
    expect(seen).toHaveLength(2);
    const ev = JSON.parse(readFileSync(join(outputDir, "gs4", "eval.json"), "utf8"));
    expect(ev.step).toBe(4);
    expect(ev.metrics.perplexity).toBeCloseTo(seen[1]!, 10);
    expect(ev.metrics.perplexity).toBeGreaterThan(1);
    expect(ev.metrics.perplexity).toBeLessThan(VOCAB * 4);
    expect(ev.texts.sample_0).toMatch(/^(t\d+ ){6}t\d+$/);
    const tags = (await runReference("tensorboard_tags.py", [logDir])).trim().split(" ");
    expect(tags).toEqual(expect.arrayContaining(["eval/perplexity", "eval/nll"]));
    const html = readFileSync(await buildReport(outputDir), "utf8");
    expect(html).toContain('id="samples"');
    expect(html).toContain(ev.texts.sample_0);
    await student.dispose();
  });
});
