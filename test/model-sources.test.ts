import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { Tensor, Worker, WorkerError } from "../src/index.js";
import { runPython, tempDir } from "./helpers/fixtures.js";

const ids = Tensor.from([[2n, 5n, 6n, 7n, 8n, 3n]], "int64");
const MODEL_ID = "tiny-org/tiny-bert";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

/**
 * Saves a tiny BERT without a classification head as a base model and as a masked LM, and a fast tokenizer; and a
 * Hugging Face cache folder holding the masked LM and the tokenizer as huggingface_hub lays it out (blobs named by
 * their hash, symlinked from snapshots/<commit>, refs/main naming the commit).
 */
const BUILD = `
import hashlib, os, sys, torch
from pathlib import Path
from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast
root = Path(sys.argv[1])
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "great", "bad"]
config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=32)
for name, cls in (("base", BertModel), ("mlm", BertForMaskedLM)):
    torch.manual_seed(0)
    cls(config).save_pretrained(str(root / name), safe_serialization=True)
(root / "vocab.txt").write_text("\\n".join(vocab) + "\\n")
BertTokenizerFast(vocab_file=str(root / "vocab.txt"), do_lower_case=True).save_pretrained(str(root / "mlm"))
repo = root / "hub" / ("models--" + sys.argv[2].replace("/", "--"))
snapshot = repo / "snapshots" / sys.argv[3]
for folder in (repo / "blobs", repo / "refs", snapshot):
    folder.mkdir(parents=True)
for file in sorted((root / "mlm").iterdir()):
    blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
    blob.write_bytes(file.read_bytes())
    os.symlink(os.path.relpath(blob, snapshot), snapshot / file.name)
(repo / "refs" / "main").write_text(sys.argv[3])
`;

describe("where a model's weights come from (real worker)", () => {
  const tmp = tempDir();
  let worker: Worker;

  beforeAll(async () => {
    await runPython(BUILD, [tmp.path, MODEL_ID, COMMIT]);
    // The hub's own offline switch turned off and its endpoint unreachable: a Hub id must still load, from the cache.
    worker = await Worker.start({
      device: "cpu",
      env: { HF_HUB_CACHE: join(tmp.path, "hub"), HF_HUB_OFFLINE: "0", TRANSFORMERS_OFFLINE: "0", HF_ENDPOINT: "http://127.0.0.1:9" },
    });
  });
  afterAll(async () => {
    await worker?.close();
    tmp.cleanup();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("reports and names in one warning the head a base or masked-LM checkpoint lacks", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const fromBase = await worker.loadModel({ path: join(tmp.path, "base"), task: "sequence-classification" });
    expect(fromBase.initReport).toEqual({
      source: "checkpoint",
      task: "sequence-classification",
      path: join(tmp.path, "base"),
      newlyInitialized: ["classifier.weight", "classifier.bias"],
      missing: ["classifier.bias", "classifier.weight"],
      unexpected: [],
      mismatched: [],
    });
    expect(warn).toHaveBeenCalledTimes(1);
    const warning = String(warn.mock.calls[0]![0]);
    expect(warning).toContain(`BertForSequenceClassification from '${join(tmp.path, "base")}'`);
    expect(warning).toContain("newly initialised, not in the checkpoint: classifier.weight, classifier.bias.");
    expect(warning).toContain("warnNewWeights: false");

    const fromMlm = await worker.loadModel({ path: join(tmp.path, "mlm"), task: "sequence-classification" });
    expect(fromMlm.initReport?.newlyInitialized).toEqual([
      "bert.pooler.dense.weight",
      "bert.pooler.dense.bias",
      "classifier.weight",
      "classifier.bias",
    ]);
    expect(fromMlm.initReport?.unexpected).toContain("cls.predictions.transform.dense.weight");
    expect(warn).toHaveBeenCalledTimes(2);
    expect(String(warn.mock.calls[1]![0])).toContain(
      ": bert.pooler.dense.weight, bert.pooler.dense.bias, classifier.weight, classifier.bias.",
    );

    const quiet = await worker.loadModel({ path: join(tmp.path, "mlm"), task: "sequence-classification", warnNewWeights: false });
    expect(quiet.initReport?.newlyInitialized).toHaveLength(4);
    const sameHead = await worker.loadModel({ path: join(tmp.path, "mlm"), task: "masked-lm" });
    expect(sameHead.initReport?.newlyInitialized).toEqual([]);
    expect(warn).toHaveBeenCalledTimes(2);
    await Promise.all([fromBase.dispose(), fromMlm.dispose(), quiet.dispose(), sameHead.dispose()]);
  });

  it("reports what createModel copied from initFrom and warns about what it could not", async () => {
    const teacher = await worker.loadModel({
      path: join(tmp.path, "mlm"),
      task: "sequence-classification",
      config: { num_labels: 3 },
      warnNewWeights: false,
    });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const student = await worker.createModel({ config: { num_hidden_layers: 1, num_labels: 2 }, initFrom: teacher, layerMap: [0] });
    const report = student.initReport;
    if (report?.source !== "initFrom") throw new Error(`expected a copy report, got ${JSON.stringify(report)}`);
    expect(report.copied["bert.encoder.layer.0.output.dense.weight"]).toBe("bert.encoder.layer.0.output.dense.weight");
    expect(report.newlyInitialized).toEqual(["classifier.weight", "classifier.bias"]);
    expect(report.mismatched).toEqual([
      { name: "classifier.weight", checkpoint: [3, 16], model: [2, 16] },
      { name: "classifier.bias", checkpoint: [3], model: [2] },
    ]);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toContain(
      "BertForSequenceClassification from initFrom BertForSequenceClassification: newly initialised, not in the initFrom model: classifier.weight, classifier.bias.",
    );
    const quiet = await worker.createModel({ config: { num_hidden_layers: 1, num_labels: 2 }, initFrom: teacher, warnNewWeights: false });
    const same = await worker.createModel({ config: { num_hidden_layers: 1 }, initFrom: teacher });
    const scratch = await worker.createModel({ config: { ...teacher.config, num_hidden_layers: 1 } });
    expect(same.initReport?.newlyInitialized).toEqual([]);
    expect(scratch.initReport?.source).toBe("config");
    expect(warn).toHaveBeenCalledTimes(1); // silenced, nothing new, random by request
    await Promise.all([teacher.dispose(), student.dispose(), quiet.dispose(), same.dispose(), scratch.dispose()]);
  });

  it("loads a Hub id's model and tokenizer from the local Hugging Face cache, offline", async () => {
    const snapshot = join(tmp.path, "hub", "models--tiny-org--tiny-bert", "snapshots", COMMIT);
    const [byId, byFolder] = await Promise.all([
      worker.loadModel({ path: MODEL_ID, task: "masked-lm" }),
      worker.loadModel({ path: join(tmp.path, "mlm"), task: "masked-lm" }),
    ]);
    expect(byId.initReport).toMatchObject({ source: "checkpoint", path: snapshot, newlyInitialized: [] });
    const [a, b] = await Promise.all([byId.predict({ input_ids: ids }), byFolder.predict({ input_ids: ids })]);
    expect(a.logits!.toFlatArray()).toEqual(b.logits!.toFlatArray());
    const tokenizer = await worker.loadTokenizer(MODEL_ID);
    const encoded = await tokenizer.encode(["the movie was great"]);
    expect(encoded.input_ids!.toArray()).toEqual(ids.toArray());
    await Promise.all([byId.dispose(), byFolder.dispose(), tokenizer.dispose()]);
  });

  it("gives loadModel and loadTokenizer one error for an id the cache lacks: where it looked and the fix", async () => {
    const [model, tokenizer] = await Promise.all([
      worker.loadModel({ path: "tiny-org/absent" }).catch((e: unknown) => e),
      worker.loadTokenizer("tiny-org/absent").catch((e: unknown) => e),
    ]);
    for (const err of [model, tokenizer]) {
      expect(err).toBeInstanceOf(WorkerError);
      expect((err as WorkerError).pythonType).toBe("ModelNotFoundError");
    }
    const message = (model as WorkerError).pythonMessage;
    expect((tokenizer as WorkerError).pythonMessage).toBe(message);
    expect(message).toMatch(/^path: 'tiny-org\/absent' is neither a local path \(relative paths are resolved against/);
    expect(message).toContain(`there is no 'models--tiny-org--absent' in it (cache folder '${join(tmp.path, "hub")}', from HF_HUB_CACHE)`);
    expect(message).toContain("Nothing is downloaded");
    expect(message).toContain("`hf download tiny-org/absent`");
    expect(message).toContain("give the path of a local folder");
  });
});
