/**
 * ONNX: `model.exportOnnx(path)` writes a graph that onnxruntime runs within 1e-4 of PyTorch (checked in the worker and
 * reported), and `textbrewer-ts/onnx` serves it from Node (tokenizer.json in JavaScript, onnxruntime-node) with the
 * same token ids and the same logits as the worker, for batch sizes and lengths other than the traced sample's.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OnnxStudent } from "../src/onnx/index.js";
import { WorkerError } from "../src/worker/errors.js";
import { makeWordTokenizer, useRealWorker } from "./helpers/fixtures.js";

const VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "a", "very", "plot", "dull", "great", "acting"];
const TEXTS = ["a very good film", "dull plot", "great acting , bad plot , very very dull film", "unknownword"];
const LABELS = ["negative", "positive"];

function maxAbsDiff(a: number[][], b: number[][]): number {
  expect(a.map((r) => r.length)).toEqual(b.map((r) => r.length));
  return Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i]![j]!))));
}

describe("ONNX export and the student in onnxruntime-node (real worker)", () => {
  const suite = useRealWorker({ models: { student: { layers: 2, vocab: VOCAB.length, numLabels: 2, seed: 4 } } });
  const { tmp, models } = suite;

  it("exportOnnx reports its check against PyTorch; OnnxStudent gives the worker's token ids and logits within 1e-4", async () => {
    const tokenizer = await suite.worker.loadTokenizer(await makeWordTokenizer(join(tmp.path, "tok"), VOCAB));
    const model = await suite.worker.loadModel({ path: models.student });
    const dir = join(tmp.path, "served");
    await model.save(dir, { tokenizer, labels: LABELS });
    const report = await model.exportOnnx(join(dir, "model.onnx"), { opset: 17 });
    expect(report.inputs).toEqual(["input_ids", "attention_mask", "token_type_ids"]);
    expect(report.output).toBe("logits");
    expect(report.opset).toBe(17);
    expect(report.bytes).toBeGreaterThan(10_000);
    expect(report.maxAbsDiff).toBeLessThan(1e-4);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);

    const student = await OnnxStudent.load(dir);
    try {
      expect(student.labels).toEqual(LABELS);
      const encoded = student.encode(TEXTS);
      const reference = await tokenizer.encode(TEXTS);
      expect(encoded.dims).toEqual(reference.input_ids!.shape);
      expect(Array.from(encoded.input_ids, Number)).toEqual(reference.input_ids!.toFlatArray());
      expect(Array.from(encoded.attention_mask, Number)).toEqual(reference.attention_mask!.toFlatArray());

      // 4 texts of another length than the traced 2 × 8 sample: the axes are dynamic
      const ours = await student.logits(TEXTS);
      const torch = (await model.predict(reference)).logits!.toArray() as number[][];
      expect(maxAbsDiff(ours, torch)).toBeLessThan(1e-4);
      const one = await student.logits([TEXTS[0]!]);
      expect(maxAbsDiff(one, [torch[0]!])).toBeLessThan(1e-4);
      const classes = await student.classify(TEXTS);
      expect(classes.map((c) => c.label)).toEqual(torch.map((row) => LABELS[row.indexOf(Math.max(...row))]));
      for (const c of classes) expect(c.score).toBeGreaterThanOrEqual(0.5);
    } finally {
      await student.release();
      await Promise.all([model.dispose(), tokenizer.dispose()]);
    }
  });

  it("refuses an opset the exporter does not write and a folder as the path, naming the field; writes nothing", async () => {
    const model = await suite.worker.loadModel({ path: models.student });
    const path = join(tmp.path, "refused.onnx");
    const opset = await model.exportOnnx(path, { opset: 99 }).catch((e: unknown) => e);
    expect(opset).toBeInstanceOf(WorkerError);
    expect((opset as WorkerError).pythonMessage).toMatch(/^opset: 99 is not an opset the exporter writes; use 9\.\.20/);
    const folder = await model.exportOnnx(tmp.path).catch((e: unknown) => e);
    expect((folder as WorkerError).pythonMessage).toMatch(/^path: '.*' is a folder; give a file path such as 'student\.onnx'/);
    expect(existsSync(path)).toBe(false);
    await model.dispose();
  });

  it("OnnxStudent names the missing file of a folder that was not exported", async () => {
    await expect(OnnxStudent.load(join(tmp.path, "nowhere"))).rejects.toThrow(
      /model\.onnx' does not exist; write it with model\.exportOnnx/,
    );
  });
});
