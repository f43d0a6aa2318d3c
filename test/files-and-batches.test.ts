/**
 * Hostile and damaged inputs, through the public API on a real worker: folders that ship code (auto_map) are refused
 * at once unless trusted, damaged model, tokenizer and checkpoint files are named in the error, and batches whose
 * masks do not fit input_ids (or hold NaN) are refused in preflight, in a later step and in predict.
 */
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BasicTrainer, type ModelHandle, Tensor, type Worker, WorkerError } from "../src/index.js";
import { makeWordTokenizer, runPython, useRealWorker } from "./helpers/fixtures.js";

const HERE = new URL(".", import.meta.url).pathname;
/** transformers' "run the custom code? [y/N]" prompt waits 15 s; a refusal must come well before. */
const FAST_MS = 5_000;

function makeBatch(seed: number, n = 4, len = 8): Record<string, Tensor> {
  const ids = Array.from({ length: n }, (_, i) => Array.from({ length: len }, (_, j) => BigInt(1 + ((seed * 31 + i * 7 + j * 13) % 99))));
  const mask = Array.from({ length: n }, (_, i) => Array.from({ length: len }, (_, j) => (j < len - (i % 3) ? 1n : 0n)));
  const labels = Array.from({ length: n }, (_, i) => BigInt((seed + i) % 3));
  return { input_ids: Tensor.from(ids, "int64"), attention_mask: Tensor.from(mask, "int64"), labels: Tensor.from(labels, "int64") };
}

function truncate(file: string, keep = 0.5): void {
  const data = readFileSync(file);
  writeFileSync(file, data.subarray(0, Math.floor(data.length * keep)));
}

async function rejection(promise: Promise<unknown>): Promise<WorkerError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkerError);
  return error as WorkerError;
}

async function timedRejection(promise: Promise<unknown>): Promise<{ error: WorkerError; ms: number }> {
  const start = Date.now();
  const error = await rejection(promise);
  return { error, ms: Date.now() - start };
}

describe("folders with code of their own and damaged files (real worker)", () => {
  const suite = useRealWorker({
    models: { bert: { layers: 1, seed: 1 } },
    // transformers copies trusted code into HF_MODULES_CACHE: keep it in the test's folder
    worker: (dir) => ({ env: { HF_MODULES_CACHE: join(dir, "modules") } }),
  });
  const { tmp } = suite;
  let worker: Worker;
  let bert: string;
  let tokenizer: string;

  beforeAll(async () => {
    ({ worker } = suite);
    bert = suite.models.bert;
    tokenizer = await makeWordTokenizer(join(tmp.path, "tok"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie"]);
    await runPython(
      "import sys\nfrom transformers import AutoModelForSequenceClassification\n" +
        "AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], safe_serialization=False)",
      [bert, join(tmp.path, "bert-bin")],
    );
    const builder = readFileSync(join(HERE, "helpers/remote_code_folder.py"), "utf8");
    await runPython(builder, [join(tmp.path, "remote"), "tiny-remote"]);
    await runPython(builder, [join(tmp.path, "remote-bert"), "bert"]);
    await (await worker.loadModel({ path: bert })).dispose(); // imports transformers before anything is timed
  });

  it("refuses a folder whose config.json has an auto_map at once, with and without a model_type it knows", async () => {
    for (const name of ["remote", "remote-bert"]) {
      const { error, ms } = await timedRejection(worker.loadModel({ path: join(tmp.path, name) }));
      expect(ms).toBeLessThan(FAST_MS);
      expect(error.pythonType).toBe("ModelLoadError");
      expect(error.pythonMessage).toBe(
        `path: '${join(tmp.path, name, "config.json")}' has an auto_map (AutoConfig: configuration_tiny.TinyConfig; ` +
          `AutoModel: modeling_tiny.TinyModel) naming Python code that transformers would run to build the model; pass ` +
          `trustRemoteCode: true only if you trust the code in '${join(tmp.path, name)}', or remove auto_map from ` +
          "config.json to use transformers' own class for its model_type",
      );
    }
    // the worker keeps serving, and its stdin lifeline was not read
    const model = await worker.loadModel({ path: bert });
    expect(model.className).toBe("BertForSequenceClassification");
    await model.dispose();
  });

  it("runs the folder's own code with trustRemoteCode: true", async () => {
    const model = await worker.loadModel({ path: join(tmp.path, "remote"), trustRemoteCode: true });
    expect(model.className).toBe("TinyModel");
    const out = await model.predict({ input_ids: Tensor.from([[1n, 2n, 3n]], "int64") });
    expect(out.logits!.shape).toEqual([1, 2]);
    await model.dispose();
  });

  it("refuses a tokenizer whose tokenizer_config.json has an auto_map at once", async () => {
    const folder = join(tmp.path, "tok-remote");
    cpSync(tokenizer, folder, { recursive: true });
    const file = join(folder, "tokenizer_config.json");
    writeFileSync(
      file,
      JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), auto_map: { AutoTokenizer: ["tok.Slow", "tok.Fast"] } }),
    );
    const { error, ms } = await timedRejection(worker.loadTokenizer(folder));
    expect(ms).toBeLessThan(FAST_MS);
    expect(error.pythonType).toBe("TokenizerLoadError");
    expect(error.pythonMessage).toMatch(
      /^path: '.*tokenizer_config\.json' has an auto_map \(AutoTokenizer: tok\.Slow, tok\.Fast\).*trustRemoteCode: true/,
    );
    const trusted = await worker.loadTokenizer(tokenizer, { trustRemoteCode: true });
    expect(trusted.className).toBe("BertTokenizerFast");
  });

  it("names a damaged model.safetensors, pytorch_model.bin and tokenizer.json", async () => {
    const st = join(tmp.path, "bert-st");
    cpSync(bert, st, { recursive: true });
    truncate(join(st, "model.safetensors"));
    const e1 = await rejection(worker.loadModel({ path: st }));
    expect(e1.pythonMessage).toMatch(
      /^path: '.*bert-st\/model\.safetensors' is not a valid safetensors file, it is truncated or damaged \(.+\); save or copy/,
    );
    expect(e1.pythonMessage).not.toContain("\n");
    const bin = join(tmp.path, "bert-bin");
    truncate(join(bin, "pytorch_model.bin"));
    const e2 = await rejection(worker.loadModel({ path: bin }));
    expect(e2.pythonMessage).toMatch(
      /^path: '.*bert-bin\/pytorch_model\.bin' is truncated or damaged \(a torch\.save archive without its central directory\)/,
    );
    const tok = join(tmp.path, "tok-damaged");
    cpSync(tokenizer, tok, { recursive: true });
    truncate(join(tok, "tokenizer.json"));
    const e3 = await rejection(worker.loadTokenizer(tok));
    expect(e3.pythonMessage).toMatch(/^path: '.*tok-damaged\/tokenizer\.json' is not valid JSON \(.+: line \d+ column \d+\)$/);
  });
});

describe("resuming from a damaged checkpoint names the file (real worker)", () => {
  const suite = useRealWorker({ models: { student: { layers: 1, seed: 2, dropout: 0 } } });
  const { tmp } = suite;
  let worker: Worker;
  let studentDir: string;
  const batches = [makeBatch(1), makeBatch(2)];

  const run = async (outputDir: string, resumeFrom?: string): Promise<unknown> => {
    const model: ModelHandle = await worker.loadModel({ path: studentDir, task: "sequence-classification" });
    try {
      const trainer = new BasicTrainer({
        trainConfig: { outputDir, device: "cpu", seed: 3 },
        model,
        adaptor: (_b: any, o: any) => ({ losses: o.loss }),
      });
      return await trainer.train({
        optimizer: { type: "AdamW", lr: 1e-3 },
        scheduler: { type: "linear", warmupSteps: 1 },
        data: batches,
        numEpochs: 2,
        ...(resumeFrom ? { resumeFrom } : {}),
      });
    } finally {
      await model.dispose();
    }
  };

  beforeAll(async () => {
    ({ worker } = suite);
    studentDir = suite.models.student;
    await run(join(tmp.path, "run"));
  });

  const pickled = async (file: string): Promise<void> => {
    await runPython(
      "import sys, torch\nclass Note:\n    pass\ntorch.save({'state': {}, 'param_groups': [], 'note': Note()}, sys.argv[1])",
      [file],
    );
  };
  const cases: Array<[string, string, (file: string) => void | Promise<void>, RegExp]> = [
    [
      "a truncated model.safetensors",
      "model/model.safetensors",
      (f) => truncate(f),
      /is not a valid safetensors file, it is truncated or damaged/,
    ],
    [
      "a truncated optimizer.pt",
      "optimizer.pt",
      (f) => truncate(f),
      /is truncated or damaged \(a torch\.save archive without its central directory\)/,
    ],
    ["a truncated scheduler.pt", "scheduler.pt", (f) => truncate(f), /is truncated or damaged/],
    ["a truncated rng_state.pt", "rng_state.pt", (f) => truncate(f), /is truncated or damaged/],
    ["an empty rng_state.pt", "rng_state.pt", (f) => writeFileSync(f, ""), /' is empty; resume/],
    [
      "a pickle payload in optimizer.pt",
      "optimizer.pt",
      pickled,
      /holds pickled Python objects that weights-only loading refuses \(Unsupported global: GLOBAL __main__\.Note.*\); checkpoints written by train\(\) hold tensors only/,
    ],
  ];
  for (const [title, name, damage, cause] of cases) {
    it(`${title}: CheckpointReadError naming it`, async () => {
      const copy = join(tmp.path, `damaged-${title.replace(/\W+/g, "-")}`);
      cpSync(join(tmp.path, "run", "gs2"), join(copy, "gs2"), { recursive: true });
      await damage(join(copy, "gs2", name));
      const error = await rejection(run(copy, join(copy, "gs2")));
      expect(error.op).toBe("train_load");
      expect(error.pythonType).toBe("CheckpointReadError");
      expect(error.pythonMessage.startsWith(`resumeFrom: '${join(copy, "gs2", name)}' `)).toBe(true);
      expect(error.pythonMessage).toMatch(cause);
      expect(error.pythonMessage).toMatch(/resume from another gs\{step\} checkpoint$/);
      expect(error.pythonMessage).not.toContain("\n");
    });
  }

  it("the undamaged checkpoint still resumes", async () => {
    const copy = join(tmp.path, "intact");
    cpSync(join(tmp.path, "run", "gs2"), join(copy, "gs2"), { recursive: true });
    const result = (await run(copy, join(copy, "gs2"))) as { globalStep: number };
    expect(result.globalStep).toBe(4);
  });
});

describe("batches are checked (real worker)", () => {
  const suite = useRealWorker({ models: { bert: { layers: 1, seed: 5 } } });
  const { tmp } = suite;
  let model: ModelHandle;

  const train = (data: Array<Record<string, Tensor>>, preflight = true): Promise<unknown> =>
    new BasicTrainer({
      trainConfig: { outputDir: join(tmp.path, `run-${Date.now()}`), device: "cpu" },
      model,
      adaptor: (_b: any, o: any) => ({ losses: o.loss }),
    }).train({
      optimizer: { type: "AdamW", lr: 1e-3 },
      data,
      numEpochs: 1,
      preflight,
    });

  beforeAll(async () => {
    model = await suite.worker.loadModel({ path: suite.models.bert, task: "sequence-classification" });
  });

  it("refuses an attention_mask of another shape in preflight, naming every tensor", async () => {
    const bad = {
      ...makeBatch(1),
      attention_mask: Tensor.from(
        Array.from({ length: 4 }, () => Array(6).fill(1n)),
        "int64",
      ),
    };
    const error = await rejection(train([bad, makeBatch(2)]));
    expect(error.op).toBe("train_preflight");
    expect(error.pythonType).toBe("BatchError");
    expect(error.pythonMessage).toBe(
      "batch.attention_mask has shape [4, 6] but input_ids has [4, 8]; masks must match it. " +
        "The batch: input_ids [4, 8] int64, attention_mask [4, 6] int64, labels [4] int64",
    );
  });

  it("refuses a float mask holding NaN in preflight", async () => {
    const mask = Array.from({ length: 4 }, () => Array(8).fill(1));
    mask[2]![5] = Number.NaN;
    const error = await rejection(train([{ ...makeBatch(1), attention_mask: Tensor.from(mask, "float32") }]));
    expect(error.pythonMessage).toMatch(
      /^batch\.attention_mask holds 1 non-finite value\(s\) \(NaN or Inf\).*attention_mask \[4, 8\] float32/,
    );
  });

  it("checks every later batch in the step, and without preflight the first one too", async () => {
    const bad = {
      ...makeBatch(3),
      token_type_ids: Tensor.from(
        Array.from({ length: 4 }, () => Array(7).fill(0n)),
        "int64",
      ),
    };
    const later = await rejection(train([makeBatch(1), makeBatch(2), bad]));
    expect(later.op).toBe("train_step");
    expect(later.pythonType).toBe("BatchError");
    expect(later.pythonMessage).toMatch(/^batch\.token_type_ids has shape \[4, 7\] but input_ids has \[4, 8\]/);
    const first = await rejection(train([bad], false));
    expect(first.op).toBe("train_step");
  });

  it("checks predict's batch", async () => {
    const error = await rejection(model.predict({ ...makeBatch(1), attention_mask: Tensor.from([[1n, 1n]], "int64") }));
    expect(error.pythonType).toBe("BatchError");
    expect(error.pythonMessage).toMatch(/^batch\.attention_mask has shape \[1, 2\] but input_ids has \[4, 8\]/);
    const out = await model.predict(makeBatch(1));
    expect(out.logits!.shape).toEqual([4, 3]);
  });
});
