/**
 * Complete exports: `model.save(dir, { tokenizer, card, labels })` writes a folder that transformers.pipeline() loads as
 * is (checked in the worker's Python, logits compared); checkpoints keep the student in gs{step}/model/, and a
 * checkpoint of the earlier layout (weights at the top) still resumes, bit for bit.
 */
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BasicTrainer, ConfigError, exportCheckpoint, type ModelHandle, Tensor, type TokenizerHandle } from "../src/index.js";
import { WorkerError } from "../src/worker/errors.js";
import { compareWeights, makeWordTokenizer, runReference, useRealWorker } from "./helpers/fixtures.js";

const VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "a", "very", "plot", "dull", "great", "acting"];
const TEXTS = ["a very good film", "dull plot", "great acting , bad plot"];
const LABELS = ["negative", "positive"];

interface PipelineResult {
  logits: number[][];
  labels: string[];
  id2label: Record<string, string>;
  model: string;
  tokenizer: string;
}

async function pipelineOf(folder: string): Promise<PipelineResult> {
  return JSON.parse(await runReference("pipeline_logits.py", [folder, JSON.stringify(TEXTS)])) as PipelineResult;
}

async function logitsOf(model: ModelHandle, tokenizer: TokenizerHandle): Promise<number[][]> {
  const batch = await tokenizer.encode(TEXTS);
  return (await model.predict(batch)).logits!.toArray() as number[][];
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  expect(a.map((r) => r.length)).toEqual(b.map((r) => r.length));
  return Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i]![j]!))));
}

function makeBatch(seed: number): Record<string, Tensor> {
  const ids = Array.from({ length: 2 }, (_, i) => Array.from({ length: 5 }, (_, j) => BigInt(5 + ((seed * 7 + i * 3 + j) % 9))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1n)),
      "int64",
    ),
    labels: Tensor.from([BigInt(seed % 2), BigInt((seed + 1) % 2)], "int64"),
  };
}

describe("complete exports (real worker, transformers.pipeline)", () => {
  const suite = useRealWorker({ models: { student: { layers: 2, vocab: VOCAB.length, numLabels: 2, seed: 3 } } });
  const { tmp, models } = suite;

  it("save(dir, { tokenizer, card, labels }) loads with pipeline() as is and gives the same logits", async () => {
    const tokenizer = await suite.worker.loadTokenizer(await makeWordTokenizer(join(tmp.path, "tok"), VOCAB));
    const model = await suite.worker.loadModel({ path: models.student });
    const dir = join(tmp.path, "export");
    const files = await model.save(dir, {
      tokenizer,
      labels: LABELS,
      card: {
        title: "tiny sentiment student",
        teacher: "tiny-teacher (4 layers)",
        recipe: { temperature: 4, hardLabelWeight: 0.5 },
        metrics: { "accuracy (test)": 0.875 },
        data: "three made-up sentences",
      },
    });
    expect(files).toEqual(
      expect.arrayContaining(["config.json", "model.safetensors", "README.md", "tokenizer.json", "tokenizer_config.json"]),
    );
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    expect(config.id2label).toEqual({ 0: "negative", 1: "positive" });
    expect(config.label2id).toEqual({ negative: 0, positive: 1 });
    const card = readFileSync(join(dir, "README.md"), "utf8");
    expect(card).toMatch(/^---\nlibrary_name: transformers\npipeline_tag: text-classification\n/);
    for (const part of [
      "# tiny sentiment student",
      "## Teacher",
      "tiny-teacher (4 layers)",
      '"temperature": 4',
      "| accuracy (test) | 0.8750 |",
      "## Data",
      "labels: 0 negative, 1 positive",
    ]) {
      expect(card).toContain(part);
    }

    const piped = await pipelineOf(dir);
    expect(piped.model).toBe("BertForSequenceClassification");
    expect(piped.id2label).toEqual({ 0: "negative", 1: "positive" });
    const ours = await logitsOf(model, tokenizer);
    expect(maxAbsDiff(piped.logits, ours)).toBeLessThan(1e-6);
    expect(piped.labels).toEqual(ours.map((row) => LABELS[row.indexOf(Math.max(...row))]));
    await Promise.all([model.dispose(), tokenizer.dispose()]);
  });

  it("refuses options that do not fit, naming the field: labels of the wrong count, an unknown key, a bare module", async () => {
    const model = await suite.worker.loadModel({ path: models.student });
    const dir = join(tmp.path, "refused");
    const wrongCount = await model.save(dir, { labels: ["a", "b", "c"] }).catch((e: unknown) => e);
    expect(wrongCount).toBeInstanceOf(WorkerError);
    expect((wrongCount as WorkerError).pythonMessage).toMatch(/^labels: \['a', 'b', 'c'\] has 3 names but the model has 2 labels/);
    const unknown = await model.save(dir, { tokenizr: null } as never).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(ConfigError);
    expect((unknown as Error).message).toMatch(/tokenizr.*did you mean 'tokenizer'/s);
    expect(existsSync(dir)).toBe(false);
    const bare = await suite.worker.loadModel({ factory: "torch.nn:Linear", factoryArgs: { in_features: 2, out_features: 2 } });
    const notHf = await bare.save(dir, { labels: LABELS }).catch((e: unknown) => e);
    expect((notHf as WorkerError).pythonMessage).toMatch(/^model: a Linear is not a Hugging Face model.*save\(dir\) and no options$/);
    expect(existsSync(dir)).toBe(false);
    await Promise.all([model.dispose(), bare.dispose()]);
  });

  it("a run's checkpoint keeps the student in gs{step}/model/, and exportCheckpoint makes it a pipeline() folder", async () => {
    const tokenizer = await suite.worker.loadTokenizer(join(tmp.path, "tok"));
    const outputDir = join(tmp.path, "run");
    const model = await suite.worker.loadModel({ path: models.student });
    await new BasicTrainer({
      trainConfig: { outputDir, device: "cpu", seed: 5, ckptSteps: 2 },
      model,
      adaptor: (_b: any, o: any) => ({ losses: o.loss }),
    }).train({ optimizer: { lr: 1e-2 }, data: [makeBatch(0), makeBatch(1)], numSteps: 2, progress: false });
    expect(readdirSync(join(outputDir, "gs2")).sort()).toEqual(["model", "optimizer.pt", "rng_state.pt", "trainer_state.json"]);
    expect(readdirSync(join(outputDir, "gs2", "model")).sort()).toEqual(["config.json", "model.safetensors"]);

    const dir = join(tmp.path, "from-checkpoint");
    await exportCheckpoint(suite.worker, outputDir, dir, { tokenizer, labels: LABELS, card: { teacher: "none (fine-tuning)" } });
    const card = readFileSync(join(dir, "README.md"), "utf8");
    expect(card).toContain('"globalStep": 2'); // the checkpoint's recipe fills the card
    const piped = await pipelineOf(dir);
    expect(maxAbsDiff(piped.logits, await logitsOf(model, tokenizer))).toBeLessThan(1e-6);
    await Promise.all([model.dispose(), tokenizer.dispose()]);
  });

  it("resumes from a checkpoint of the earlier layout (weights at the top) with the same weights as from the new one", async () => {
    const data = [makeBatch(0), makeBatch(1), makeBatch(2)];
    const train = async (outputDir: string, resumeFrom?: string): Promise<void> => {
      const model = await suite.worker.loadModel({ path: models.student });
      try {
        await new BasicTrainer({
          trainConfig: { outputDir, device: "cpu", seed: 9, ckptSteps: 2 },
          model,
          adaptor: (_b: any, o: any) => ({ losses: o.loss }),
        }).train({
          optimizer: { lr: 1e-2 },
          scheduler: { type: "linear", warmupSteps: 1 },
          data,
          numSteps: 4,
          progress: false,
          ...(resumeFrom ? { resumeFrom } : {}),
        });
      } finally {
        await model.dispose();
      }
    };
    const full = join(tmp.path, "layout-full");
    await train(full);
    const old = join(tmp.path, "layout-old", "gs2");
    cpSync(join(full, "gs2"), old, { recursive: true });
    for (const f of ["config.json", "model.safetensors"]) renameSync(join(old, "model", f), join(old, f));
    rmSync(join(old, "model"), { recursive: true });
    const resumed = join(tmp.path, "layout-resumed");
    await train(resumed, old);
    const d = await compareWeights(join(full, "gs4", "model", "model.safetensors"), join(resumed, "gs4", "model", "model.safetensors"));
    expect(d.common).toBeGreaterThan(20);
    expect(d.maxDiff).toBe(0);
  });
});
