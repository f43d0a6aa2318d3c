/**
 * The two "your own corpus" scripts (examples/classification-corpus.ts, examples/ner-corpus.ts) on small corpora
 * written here, through their command-line code path, with a tiny encoder folder as the teacher and a few steps.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { main as classificationMain } from "../examples/classification-corpus.js";
import { NER_SETTINGS, type NerSettings } from "../examples/ner.js";
import { main as nerMain } from "../examples/ner-corpus.js";
import { DEFAULT_SETTINGS, type DemoSettings } from "../examples/sentiment.js";
import { folderBytes } from "../examples/shared/prune.js";
import { seededRng } from "../src/data/index.js";
import type { Worker } from "../src/index.js";
import { makeTinyBert, makeWordTokenizer, useRealWorker } from "./helpers/fixtures.js";

const WORDS = {
  sport: ["goal", "match", "team", "coach", "league"],
  tech: ["laptop", "code", "chip", "phone", "server"],
  food: ["pasta", "bread", "soup", "cheese", "salad"],
  shared: ["the", "a", "was", "very", "today", "and", "new", "loves", "in", "met"],
  person: ["alice", "bob", "carol", "dave"],
  place: ["paris", "york", "rome", "oslo"],
};

/** A 4-layer, 32-wide BERT encoder with a word-level tokenizer over the test's words. */
async function tinyEncoder(dir: string): Promise<string> {
  await makeTinyBert(dir, { arch: "BertModel", layers: 4, vocab: 64, seed: 5 });
  const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...new Set(Object.values(WORDS).flat())];
  return makeWordTokenizer(dir, vocab);
}

const pickOne = <T>(xs: readonly T[], rng: ReturnType<typeof seededRng>): T => xs[rng.int(xs.length)]!;

/** Checkpoints of a run folder that still hold weights. */
function withWeights(dir: string): string[] {
  return readdirSync(dir).filter(
    (d) =>
      /^gs\d+$/.test(d) && existsSync(join(dir, d, "model")) && readdirSync(join(dir, d, "model")).some((f) => f.endsWith(".safetensors")),
  );
}

describe("your own corpus (real worker)", () => {
  const suite = useRealWorker({ prefix: "tbts-corpus-" });
  const { tmp } = suite;
  let worker: Worker;
  let encoder: string;
  beforeAll(async () => {
    ({ worker } = suite);
    encoder = await tinyEncoder(join(tmp.path, "encoder"));
  });

  it("distils a three-class classifier from three label<TAB>text files; the head's classes come from the data", async () => {
    const rng = seededRng(11);
    const write = (name: string, n: number) => {
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        const cls = (["sport", "tech", "food"] as const)[i % 3]!;
        lines.push(
          `${cls}\t${pickOne(WORDS.shared, rng)} ${pickOne(WORDS[cls], rng)} ${pickOne(WORDS.shared, rng)} ${pickOne(WORDS[cls], rng)}`,
        );
      }
      writeFileSync(join(tmp.path, name), `${lines.join("\n")}\n`);
      return join(tmp.path, name);
    };
    const files = [write("train.tsv", 48), write("dev.tsv", 9), write("test.tsv", 9)];
    const s: DemoSettings = structuredClone(DEFAULT_SETTINGS);
    Object.assign(s, { maxLength: 16, batchSize: 16 });
    s.teacher.epochs = 1;
    Object.assign(s.student, { layerMap: [0, 3], epochs: 2, augmentedCopies: 1 });
    s.student.matches = [
      { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
      { layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 },
    ];
    s.timing.repeats = 1;
    const runDir = join(tmp.path, "classification");
    const lines: string[] = [];
    const summary = await classificationMain([...files, "--run-dir", runDir, "--teacher", encoder], {
      worker,
      settings: s,
      log: (l) => void lines.push(l),
      progress: false,
    });
    expect(summary.dataset).toMatchObject({ name: "train.tsv, dev.tsv, test.tsv", train: 48, dev: 9, test: 9, classes: 3 });
    expect(lines[0]).toMatch(/data: train\.tsv, dev\.tsv, test\.tsv, 3 classes \(food, sport, tech\) → train 48, dev 9, test 9/);
    const config = JSON.parse(readFileSync(join(runDir, summary.studentCheckpoint, "model", "config.json"), "utf8"));
    expect(config.id2label).toEqual({ 0: "food", 1: "sport", 2: "tech" });
    expect(summary.rows.map((r) => r.layers)).toEqual([4, 2]);
    for (const r of summary.rows) expect(r.testAccuracy).toBeGreaterThanOrEqual(0);
    expect(withWeights(runDir)).toEqual([summary.studentCheckpoint]);
    expect(existsSync(join(runDir, "report.html"))).toBe(true);
  });

  it("distils a NER model from one CoNLL file without -DOCSTART-: labels read from the data, a sentence split with a warning, only the best weights kept", async () => {
    const rng = seededRng(12);
    const sentences: string[] = [];
    for (let i = 0; i < 40; i++) {
      const who = pickOne(WORDS.person, rng);
      const where = pickOne(WORDS.place, rng);
      // tab-separated, lower-case types with a dash (as in Twitter NER corpora); IO tags on "new york"
      const tokens =
        i % 2
          ? [
              [who, "B-person"],
              ["met", "O"],
              ["a", "O"],
              ["team", "O"],
              ["in", "O"],
              [where, "B-geo-loc"],
            ]
          : [
              ["the", "O"],
              ["new", "I-geo-loc"],
              ["york", "I-geo-loc"],
              ["team", "O"],
              ["loves", "O"],
              [who, "I-person"],
            ];
      sentences.push(tokens.map(([w, t]) => `${w}\t${t}`).join("\n"));
    }
    const file = join(tmp.path, "tweets.conll");
    writeFileSync(file, `${sentences.join("\n\n")}\n`);
    const s: NerSettings = structuredClone(NER_SETTINGS);
    Object.assign(s, { maxLength: 16, batchSize: 8, timingRepeats: 1 });
    s.teacher.epochs = 1;
    Object.assign(s.student, { layers: 2, layerMap: [1, 3], epochs: 2, augmentedCopies: 1, checkpointsPerEpoch: 1 });
    s.student.matches = [
      { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
      { layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 },
    ];
    const runDir = join(tmp.path, "ner");
    const lines: string[] = [];
    const summary = await nerMain([file, "--run-dir", runDir, "--teacher", encoder], {
      worker,
      settings: s,
      log: (l) => void lines.push(l),
    });
    if (!("rows" in summary)) throw new Error("expected a full run");
    expect(lines.some((l) => /warning: splitByDocument: the data has 1 document .*splitting by sentence instead/.test(l))).toBe(true);
    expect(summary.dataset).toMatchObject({
      name: "tweets.conll",
      train: 32,
      dev: 4,
      test: 4,
      labels: ["O", "B-geo-loc", "I-geo-loc", "B-person", "I-person"],
    });
    expect(summary.dataset.entities).toEqual({ person: 40, "geo-loc": 40 });
    const teacherMarker = JSON.parse(readFileSync(join(runDir, "teacher", "teacher.json"), "utf8"));
    const teacherConfig = JSON.parse(readFileSync(join(runDir, "teacher", teacherMarker.checkpoint, "model", "config.json"), "utf8"));
    expect(Object.values(teacherConfig.id2label)).toEqual(["O", "B-geo-loc", "I-geo-loc", "B-person", "I-person"]);
    for (const r of summary.rows) expect(r.testF1).toBeGreaterThanOrEqual(0);
    // only the chosen student and teacher checkpoints keep weights; nothing left to resume from
    expect(withWeights(runDir)).toEqual([summary.studentCheckpoint]);
    expect(withWeights(join(runDir, "teacher"))).toEqual([teacherMarker.checkpoint]);
    expect(readdirSync(runDir).filter((d) => /^gs\d+$/.test(d)).length).toBeGreaterThanOrEqual(2);
    expect(existsSync(join(runDir, "latest"))).toBe(false);
    for (const f of ["optimizer.pt", "scheduler.pt"]) expect(existsSync(join(runDir, summary.studentCheckpoint, f))).toBe(false);
    // the reported size is the folder's (summary.json grows by its own size field after the measurement)
    expect(Math.abs(folderBytes(runDir) - summary.runFolderBytes)).toBeLessThan(64);
    expect(lines.some((l) => /^run folder .*: \d+\.\d MB/.test(l))).toBe(true);
  });
});
