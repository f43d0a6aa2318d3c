import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type ModelHandle, ProtocolError, Tensor, type Worker, WorkerError } from "../src/index.js";
import { runPython, useRealWorker } from "./helpers/fixtures.js";

const batch = {
  input_ids: Tensor.from(
    [
      [5n, 6n, 7n, 8n, 0n],
      [9n, 10n, 11n, 0n, 0n],
    ],
    "int64",
  ),
  attention_mask: Tensor.from(
    [
      [1n, 1n, 1n, 1n, 0n],
      [1n, 1n, 1n, 0n, 0n],
    ],
    "int64",
  ),
};

function sameValues(a: Tensor, b: Tensor): boolean {
  return Buffer.from(a.bytes()).equals(Buffer.from(b.bytes()));
}

describe("model handles (real worker)", () => {
  const suite = useRealWorker({ models: { bert: { layers: 4, seed: 3 } } });
  const { tmp } = suite;
  let worker: Worker;
  let folder: string;
  let model: ModelHandle;

  beforeAll(async () => {
    ({ worker } = suite);
    folder = suite.models.bert;
    model = await worker.loadModel({ path: folder, task: "sequence-classification" });
  });

  it("loads a Hugging Face folder and predicts logits, hidden states and attentions", async () => {
    expect(model.className).toBe("BertForSequenceClassification");
    const out = await model.predict(batch, { hidden: true, attention: true });
    expect(out.logits!.shape).toEqual([2, 3]);
    expect(out.hidden_states!.length).toBe(5);
    expect(out.hidden_states![0]!.shape).toEqual([2, 5, 32]);
    expect(out.attentions!.length).toBe(4);
    expect(out.attentions![0]!.shape).toEqual([2, 4, 5, 5]);
    // predict runs in eval mode: deterministic despite dropout
    const [first, again] = [await model.predict(batch), await model.predict(batch)];
    expect(sameValues(again.logits!, first.logits!)).toBe(true);
    // the attention maps come from the eager kernel; its logits agree with the fused one to float rounding
    first.logits!.toFlatArray().forEach((v, i) => {
      expect(v).toBeCloseTo(out.logits!.toFlatArray()[i]!, 6);
    });
  });

  it("describes its parameters as TextBrewer's display_parameters does", async () => {
    const n = await model.numParameters();
    const table = await model.describe({ maxLevel: 2 });
    expect(table).toMatch(/LAYER NAME\s+#PARAMS\s+RATIO\s+MEM\(MB\)/);
    expect(table).toContain("bert");
    expect(table).toContain(n.toLocaleString("en-US"));
    expect(n).toBeGreaterThan(30_000);
  });

  it("saves an HF folder with safetensors that reloads to identical outputs", async () => {
    const dir = join(tmp.path, "saved");
    const files = await model.save(dir);
    expect(files).toContain("model.safetensors");
    expect(files).toContain("config.json");
    const reloaded = await worker.loadModel({ path: dir });
    expect(reloaded.className).toBe("BertForSequenceClassification");
    const [a, b] = await Promise.all([model.predict(batch), reloaded.predict(batch)]);
    expect(sameValues(a.logits!, b.logits!)).toBe(true);
    await reloaded.dispose();
  });

  it("creates a student from the teacher's config and chosen layers", async () => {
    const student = await worker.createModel({ config: { num_hidden_layers: 2 }, initFrom: model, layerMap: [1, 3] });
    expect(student.className).toBe("BertForSequenceClassification");
    expect(student.config!.num_hidden_layers).toBe(2);
    const report = student.initReport;
    if (report?.source !== "initFrom") throw new Error(`expected a copy report, got ${JSON.stringify(report)}`);
    expect(report.copied["bert.encoder.layer.0.attention.self.query.weight"]).toBe("bert.encoder.layer.1.attention.self.query.weight");
    expect(report.copied["bert.encoder.layer.1.output.dense.bias"]).toBe("bert.encoder.layer.3.output.dense.bias");
    const [s, t] = await Promise.all([student.predict(batch, { hidden: true }), model.predict(batch, { hidden: true })]);
    expect(sameValues(s.hidden_states![0]!, t.hidden_states![0]!)).toBe(true); // embeddings copied
    await expect(worker.createModel({ config: { num_hidden_layers: 2 }, initFrom: model, layerMap: [1, 9] })).rejects.toThrow(/layerMap/);
    await student.dispose();
  });

  it("loads a bare safetensors state dict with its config, and refuses pickles unless weightsOnly is false", async () => {
    await runPython(
      `import sys, torch
from safetensors.torch import load_file
class Note:
    pass
sd = load_file(sys.argv[1] + "/model.safetensors")
torch.save(sd, sys.argv[2] + "/weights.pt")
sd["note"] = Note()
torch.save(sd, sys.argv[2] + "/pickled.pt")`,
      [folder, tmp.path],
    );
    const fromSd = await worker.loadModel({
      path: join(folder, "model.safetensors"),
      config: join(folder, "config.json"),
      task: "sequence-classification",
    });
    const fromPt = await worker.loadModel({
      path: join(tmp.path, "weights.pt"),
      config: join(folder, "config.json"),
      task: "sequence-classification",
    });
    const [a, b, c] = await Promise.all([model.predict(batch), fromSd.predict(batch), fromPt.predict(batch)]);
    expect(sameValues(a.logits!, b.logits!)).toBe(true);
    expect(sameValues(a.logits!, c.logits!)).toBe(true);
    const refused = await worker
      .loadModel({ path: join(tmp.path, "pickled.pt"), config: join(folder, "config.json"), task: "sequence-classification" })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkerError);
    expect((refused as Error).message).toMatch(/weightsOnly: false/);
    await Promise.all([fromSd.dispose(), fromPt.dispose()]);
  });

  it("loads a Python factory and a TorchScript file", async () => {
    const factory = join(tmp.path, "factory.py");
    writeFileSync(
      factory,
      "import torch\ndef make(width):\n    torch.manual_seed(0)\n    return torch.nn.Sequential(torch.nn.Linear(width, 2))\n",
    );
    const m = await worker.loadModel({ factory: `${factory}:make`, factoryArgs: { width: 3 } });
    const out = (await m.predict(Tensor.from([[1, 2, 3]]))) as unknown as Tensor;
    expect(out.shape).toEqual([1, 2]);
    await runPython("import sys, torch\ntorch.manual_seed(0)\nm = torch.jit.script(torch.nn.Linear(3, 2))\nm.save(sys.argv[1])", [
      join(tmp.path, "scripted.pt"),
    ]);
    const ts = await worker.loadModel({ path: join(tmp.path, "scripted.pt"), format: "torchscript" });
    const tsOut = (await ts.predict(Tensor.from([[1, 2, 3]]))) as unknown as Tensor;
    expect(tsOut.shape).toEqual([1, 2]);
    await Promise.all([m.dispose(), ts.dispose()]);
  });

  it("gives clear errors that name the field, and keeps serving", async () => {
    // each case starts only when the loop reaches it, so no rejection waits unhandled while an earlier case runs
    const cases: Array<[() => Promise<unknown>, RegExp, typeof WorkerError | typeof ProtocolError]> = [
      [() => worker.loadModel({ path: join(tmp.path, "missing") }), /path.*does not exist/s, WorkerError],
      [() => worker.loadModel({ path: tmp.path }), /not a checkpoint|config\.json/, WorkerError],
      // refused by the op catalogue before it is sent
      [
        () => worker.loadModel({ path: folder, task: "translation" as never }),
        /task: received "translation"; expected one of/,
        ProtocolError,
      ],
      [() => model.predict({ input_ids: Tensor.from([[1.5, 2.5]]) }), /batch/, WorkerError],
      [() => model.predict({ nonsense: Tensor.from([[1n]], "int64") }), /batch.*nonsense/s, WorkerError],
    ];
    for (const [start, pattern, kind] of cases) {
      const err = await start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(kind);
      expect((err as Error).message).toMatch(pattern);
    }
    await runPython(
      `import sys, torch
from safetensors.torch import load_file, save_file
sd = load_file(sys.argv[1] + "/model.safetensors")
sd["extra.weight"] = torch.zeros(2)
del sd["classifier.bias"]
save_file(sd, sys.argv[2])`,
      [folder, join(tmp.path, "broken.safetensors")],
    );
    const mismatch = await worker
      .loadModel({ path: join(tmp.path, "broken.safetensors"), config: join(folder, "config.json"), task: "sequence-classification" })
      .catch((e: unknown) => e);
    expect((mismatch as Error).message).toMatch(/classifier\.bias/);
    expect((mismatch as Error).message).toMatch(/extra\.weight/);
    const out = await model.predict(batch);
    expect(out.logits!.shape).toEqual([2, 3]);
    await model.dispose();
    await expect(model.predict(batch)).rejects.toThrow(/disposed/);
  });
});
