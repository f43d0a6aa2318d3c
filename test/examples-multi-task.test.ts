/**
 * The two-headed student of examples/multi-task.ts (examples/shared/two_heads.py, a Python factory) through a real
 * worker with tiny models: initialised from teachers, distilled for a few MultiTaskDistiller steps, saved and loaded
 * back.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { seededRng } from "../src/data/index.js";
import { type ModelHandle, MultiTaskDistiller, Tensor } from "../src/index.js";
import { useRealWorker } from "./helpers/fixtures.js";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const TWO_HEADS = join(ROOT, "examples", "shared", "two_heads.py");

describe("two-headed student (real worker)", () => {
  const suite = useRealWorker({
    prefix: "tbts-two-heads-",
    models: {
      base: { arch: "BertModel", layers: 4, seed: 1, dropout: 0 },
      sentiment: { arch: "BertForSequenceClassification", layers: 4, numLabels: 2, seed: 2, dropout: 0 },
      ner: { arch: "BertForTokenClassification", layers: 4, numLabels: 9, seed: 3, dropout: 0 },
    },
  });
  const { tmp, models: dirs } = suite;

  const ids = (rows: number, len: number, seed: number) => {
    const rng = seededRng(seed);
    return Tensor.from(
      Array.from({ length: rows }, () => Array.from({ length: len }, () => BigInt(1 + Math.floor(rng.random() * 98)))),
      "int64",
    );
  };
  const mask = (rows: number, len: number) =>
    Tensor.from(
      Array.from({ length: rows }, () => Array.from({ length: len }, () => 1n)),
      "int64",
    );

  it("copies a teacher's layers and heads: with all its layers it answers as that teacher does", async () => {
    const batch = { input_ids: ids(2, 5, 7), attention_mask: mask(2, 5) };
    const args = { base: dirs.base, layer_map: [0, 1, 2, 3], sentence_labels: 2, token_labels: 9 };
    for (const [dir, task, key] of [
      [dirs.ner, "token-classification", "token_logits"],
      [dirs.sentiment, "sequence-classification", "sentence_logits"],
    ] as const) {
      const copy = await suite.worker.loadModel({
        factory: `${TWO_HEADS}:build`,
        factoryArgs: { ...args, encoder_from: [dir], sentence_head_from: dirs.sentiment, token_head_from: dirs.ner },
      });
      const teacher = await suite.worker.loadModel({ path: dir, task });
      const a = [...((await copy.predict(batch))[key] as Tensor).data].map(Number);
      const b = [...(await teacher.predict(batch)).logits!.data].map(Number);
      expect(a.length).toBe(b.length);
      a.forEach((v, i) => {
        expect(v).toBeCloseTo(b[i]!, 4);
      });
      await Promise.all([copy.dispose(), teacher.dispose()]);
    }
  });

  it("starts from the teachers, answers both tasks, takes the loss of the head its labels fit, and trains with MultiTaskDistiller", async () => {
    const args = { base: dirs.base, layer_map: [1, 3], sentence_labels: 2, token_labels: 9 };
    const student = await suite.worker.loadModel({
      factory: `${TWO_HEADS}:build`,
      factoryArgs: { ...args, encoder_from: [dirs.ner, dirs.sentiment], sentence_head_from: dirs.sentiment, token_head_from: dirs.ner },
    });
    const batch = { input_ids: ids(3, 7, 1), attention_mask: mask(3, 7) };
    const out = await student.predict(batch, { hidden: true });
    expect((out.sentence_logits as Tensor).shape).toEqual([3, 2]);
    expect((out.token_logits as Tensor).shape).toEqual([3, 7, 9]);
    expect((out.hidden_states as Tensor[]).length).toBe(3);
    const sentimentTeacher = await suite.worker.loadModel({ path: dirs.sentiment, task: "sequence-classification" });
    const nerTeacher = await suite.worker.loadModel({ path: dirs.ner, task: "token-classification" });
    const withSentenceLabels = await student.predict({ ...batch, labels: Tensor.from([0n, 1n, 1n], "int64") });
    const withTokenLabels = await student.predict({
      ...batch,
      labels: Tensor.from(
        Array.from({ length: 3 }, () => Array.from({ length: 7 }, (_, k) => (k === 0 ? -100n : BigInt(k)))),
        "int64",
      ),
    });
    expect(Number((withSentenceLabels.loss as Tensor).data[0])).toBeGreaterThan(0);
    expect(Number((withTokenLabels.loss as Tensor).data[0])).not.toBeCloseTo(Number((withSentenceLabels.loss as Tensor).data[0]), 5);

    const sentimentBatches = [0, 1, 2].map((k) => ({
      input_ids: ids(4, 6, 10 + k),
      attention_mask: mask(4, 6),
      labels: Tensor.from([0n, 1n, 0n, 1n], "int64"),
    }));
    const nerBatches = [0, 1].map((k) => ({
      input_ids: ids(4, 8, 20 + k),
      attention_mask: mask(4, 8),
      labels: Tensor.from(
        Array.from({ length: 4 }, () => Array.from({ length: 8 }, (_, j) => BigInt(j % 9))),
        "int64",
      ),
    }));
    const hidden = (b: any, o: any) => ({ hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });
    const outputDir = join(tmp.path, "run");
    const steps: number[] = [];
    await new MultiTaskDistiller({
      trainConfig: { outputDir, device: "cpu", seed: 1, ckptSteps: 4 },
      distillConfig: {
        temperature: 1,
        hardLabelWeight: 1,
        intermediateMatches: [{ layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 }],
      },
      teachers: { sentiment: sentimentTeacher, ner: nerTeacher },
      student,
      adaptorT: {
        sentiment: (b: any, o: any) => ({ ...hidden(b, o), logits: o.logits }),
        ner: (b: any, o: any) => ({ ...hidden(b, o), logits: o.logits, logits_mask: b.attention_mask }),
      },
      adaptorS: {
        sentiment: (b: any, o: any) => ({ ...hidden(b, o), logits: o.sentence_logits }),
        ner: (b: any, o: any) => ({ ...hidden(b, o), logits: o.token_logits, logits_mask: b.attention_mask }),
      },
    }).train({
      optimizer: { lr: 1e-3 },
      data: { sentiment: sentimentBatches, ner: nerBatches },
      numSteps: 8,
      callback: async ({ step }) => {
        steps.push(step);
      },
    });
    expect(steps).toEqual([4, 8]);
    const weights = join(outputDir, "gs8", "model", "model.safetensors");
    expect(existsSync(weights)).toBe(true);
    const after = await student.predict(batch);
    const loaded: ModelHandle = await suite.worker.loadModel({ factory: `${TWO_HEADS}:build`, factoryArgs: args, path: weights });
    const reloaded = await loaded.predict(batch);
    expect([...(reloaded.token_logits as Tensor).data].map(Number)).toEqual([...(after.token_logits as Tensor).data].map(Number));
    expect([...(reloaded.sentence_logits as Tensor).data].map(Number)).toEqual([...(after.sentence_logits as Tensor).data].map(Number));
    expect([...(after.sentence_logits as Tensor).data].map(Number)).not.toEqual([...(out.sentence_logits as Tensor).data].map(Number));
  });
});
