/** The pieces examples/ner.ts adds: NER augmentation (teacher-labelled copies) and the teacher marker that lets a run reuse a teacher. */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import {
  augmentNerSentence,
  ioLabels,
  mentionPool,
  NER_LABELS,
  NER_SETTINGS,
  type NerSettings,
  runNer,
  toIo,
  WIKIGOLD_OVERRIDES,
  withOverrides,
} from "../examples/ner.js";
import { fingerprintOf, readTeacherMarker, writeTeacherMarker } from "../examples/shared/teacher-marker.js";
import { bioEntities, entityF1, type NerSentence, seededRng } from "../src/data/index.js";
import { makeTinyBert, makeWordTokenizer, runPython, tempDir, useRealWorker } from "./helpers/fixtures.js";

const ROOT = resolve(new URL("..", import.meta.url).pathname);

const SENTENCES: NerSentence[] = [
  { doc: 0, words: ["John", "Smith", "lives", "in", "New", "York", "."], tags: ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"] },
  {
    doc: 0,
    words: ["Acme", "Corp", "sued", "Bob", "in", "Paris", "today", "."],
    tags: ["B-ORG", "I-ORG", "O", "B-PER", "O", "B-LOC", "O", "O"],
  },
];

describe("NER augmentation", () => {
  it("keeps words and tags aligned, tags valid BIO, and is reproducible", () => {
    const pool = mentionPool(SENTENCES);
    expect(pool.PER).toEqual([["John", "Smith"], ["Bob"]]);
    expect(pool.LOC).toEqual([["New", "York"], ["Paris"]]);
    const run = (seed: number) => {
      const rng = seededRng(seed);
      return Array.from({ length: 50 }, (_, i) => augmentNerSentence(SENTENCES[i % 2]!, rng, pool));
    };
    const a = run(3);
    expect(run(3)).toEqual(a);
    let changed = 0;
    for (const [i, s] of a.entries()) {
      expect(s.words.length).toBe(s.tags.length);
      expect(s.words.length).toBeGreaterThan(0);
      // every I-X follows B-X or I-X
      s.tags.forEach((t, k) => {
        if (t.startsWith("I-")) expect(s.tags[k - 1]?.slice(2)).toBe(t.slice(2));
      });
      // mentions (replaced or not, maybe with words masked or dropped) come from the pool, with their type
      for (const e of bioEntities(s.tags)) {
        const words = s.words.slice(e.start, e.end);
        expect(pool[e.type]!.some((m) => words.every((w) => w === "[MASK]" || m.includes(w)))).toBe(true);
      }
      if (s.words.join(" ") !== SENTENCES[i % 2]!.words.join(" ")) changed++;
    }
    expect(changed).toBeGreaterThan(10);
  });
});

describe("IO label scheme", () => {
  it("keeps the entities of BIO tags without adjacent mentions of one type, so entity F1 is unchanged", () => {
    expect(ioLabels(NER_LABELS)).toEqual(["O", "I-LOC", "I-MISC", "I-ORG", "I-PER"]);
    const io = SENTENCES.map(toIo);
    expect(io[1]!.tags).toEqual(["I-ORG", "I-ORG", "O", "I-PER", "O", "I-LOC", "O", "O"]);
    for (const [k, s] of SENTENCES.entries()) expect(bioEntities(io[k]!.tags)).toEqual(bioEntities(s.tags));
    // a prediction scored against IO gold and against BIO gold gets the same F1
    const predicted = [
      ["I-PER", "I-PER", "O", "O", "I-LOC", "O", "O"],
      ["I-ORG", "O", "O", "I-PER", "O", "I-LOC", "O", "O"],
    ];
    expect(
      entityF1(
        io.map((s) => s.tags),
        predicted,
      ),
    ).toEqual(
      entityF1(
        SENTENCES.map((s) => s.tags),
        predicted,
      ),
    );
    expect(
      entityF1(
        SENTENCES.map((s) => s.tags),
        predicted,
      ).f1,
    ).toBeCloseTo(0.6, 12); // 3 of 5 predicted, 3 of 5 gold
  });

  it("merges adjacent mentions of one type (the boundary IO cannot mark)", () => {
    const s: NerSentence = { doc: 0, words: ["Paris", "London"], tags: ["B-LOC", "B-LOC"] };
    expect(bioEntities(toIo(s).tags)).toEqual([{ type: "LOC", start: 0, end: 2 }]);
  });
});

describe("settings overrides", () => {
  it("sets nested keys from key=value, values read as JSON or kept as strings", () => {
    const s = withOverrides(NER_SETTINGS, ["teacher.lr=2e-4", "labelScheme=io", "student.layerMap=[0,2,4]", "student.kdPositions=words"]);
    expect(s.teacher).toEqual({ ...NER_SETTINGS.teacher, lr: 2e-4 });
    expect(s.labelScheme).toBe("io");
    expect(s.student.layerMap).toEqual([0, 2, 4]);
    expect(s.student.kdPositions).toBe("words");
    expect(NER_SETTINGS.teacher.lr).toBe(1e-4); // the defaults are left alone
  });

  it("WikiGold's chosen settings are overrides of keys the settings have", () => {
    const s = withOverrides(NER_SETTINGS, WIKIGOLD_OVERRIDES);
    expect(s.labelScheme).toBe("io");
    expect(s.teacher.lr).toBe(2e-4);
    expect(s.student).toMatchObject({ layerMapFrom: "suggested", temperature: 2, epochs: 8 });
    expect(s.student.layers).toBe(NER_SETTINGS.student.layers);
  });

  it("names the override and the missing key", () => {
    expect(() => withOverrides(NER_SETTINGS, ["techer.lr=1"])).toThrow(/--set techer\.lr=1: the settings have no "techer"/);
    expect(() => withOverrides(NER_SETTINGS, ["teacher.lr"])).toThrow(/expected key=value/);
  });
});

describe("teacher marker", () => {
  it("is read back only when its checkpoint exists and its fingerprint matches", async () => {
    const tmp = tempDir("tbts-marker-");
    try {
      const fp = fingerprintOf({ a: 1 });
      expect(fingerprintOf({ a: 1 })).toBe(fp);
      expect(fingerprintOf({ a: 2 })).not.toBe(fp);
      writeTeacherMarker(tmp.path, { fingerprint: fp, checkpoint: "gs1", devF1: 0.5 });
      expect(readTeacherMarker(tmp.path)).toBeNull(); // no gs1/config.json
      await makeTinyBert(join(tmp.path, "gs1"), { layers: 1 });
      expect(readTeacherMarker(tmp.path)?.devF1).toBe(0.5);
      expect(readTeacherMarker(tmp.path, fp)?.checkpoint).toBe("gs1");
      expect(readTeacherMarker(tmp.path, fingerprintOf({ a: 2 }))).toBeNull();
      expect(readTeacherMarker(join(tmp.path, "nothing"))).toBeNull();
    } finally {
      tmp.cleanup();
    }
  });
});

describe("KD on words (the Python adaptor)", () => {
  it("KD on words masks every position without a label: [CLS], [SEP], padding and later sub-tokens", async () => {
    const out = await runPython(
      [
        "import sys, importlib.util, json, torch",
        "from types import SimpleNamespace",
        "spec = importlib.util.spec_from_file_location('ner_adaptor', sys.argv[1])",
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)",
        "batch = {'labels': torch.tensor([[-100, 2, -100, 0, -100, -100]]), 'attention_mask': torch.tensor([[1, 1, 1, 1, 1, 0]])}",
        "r = m.word_starts(batch, SimpleNamespace(logits=torch.zeros(1, 6, 3), hidden_states=(), loss=None))",
        "print(json.dumps({'mask': r['logits_mask'].tolist(), 'dtype': str(r['logits_mask'].dtype), 'inputs': r['inputs_mask'].tolist()}))",
      ].join("\n"),
      [join(ROOT, "examples", "shared", "ner_adaptor.py")],
    );
    expect(JSON.parse(out.trim().split("\n").at(-1)!)).toEqual({
      mask: [[0, 1, 0, 1, 0, 0]],
      dtype: "torch.int64",
      inputs: [[1, 1, 1, 1, 1, 0]],
    });
  });
});

// a whole runNer (teacher, suggestion, two stages) on tiny models: about 20 s on an idle 2-core machine
describe.skipIf(!process.env.TEXTBREWER_SLOW_TESTS)("NER retention levers (real worker)", () => {
  const suite = useRealWorker({ prefix: "tbts-ner-levers-" });
  const WORDS = {
    shared: ["the", "a", "met", "in", "team", "loves", "today"],
    person: ["alice", "bob", "carol", "dave"],
    place: ["paris", "york", "rome", "oslo"],
  };

  it("runs IO tags, the suggested layer map, two stages and KD on words together, and leaves no stage-1 folder", async () => {
    const encoder = join(suite.tmp.path, "encoder");
    await makeTinyBert(encoder, { arch: "BertModel", layers: 4, vocab: 64, seed: 5 });
    await makeWordTokenizer(encoder, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...Object.values(WORDS).flat()]);
    const rng = seededRng(12);
    const one = <T>(xs: readonly T[]) => xs[rng.int(xs.length)]!;
    const sentences = (n: number, doc: number): NerSentence[] =>
      Array.from({ length: n }, () => ({
        doc,
        words: [one(WORDS.person), "met", one(WORDS.shared), "in", one(WORDS.place)],
        tags: ["B-PER", "O", "O", "O", "B-LOC"],
      }));
    const s: NerSettings = structuredClone(NER_SETTINGS);
    Object.assign(s, { maxLength: 16, batchSize: 8, labelScheme: "io" });
    s.teacher.epochs = 1;
    Object.assign(s.student, {
      layers: 2,
      epochs: 1,
      augmentedCopies: 1,
      layerMapFrom: "suggested",
      intermediateEpochs: 1,
      kdPositions: "words",
    });
    const runDir = join(suite.tmp.path, "ner");
    const lines: string[] = [];
    const result = await runNer({
      data: { train: sentences(16, 0), dev: sentences(4, 1), test: sentences(4, 2), labels: NER_LABELS },
      runDir,
      teacher: { path: encoder },
      settings: s,
      worker: suite.worker,
      log: (l) => void lines.push(l),
      test: false,
    });
    if (!("devF1" in result) || result.devF1.student === undefined) throw new Error("expected the student's dev scores");
    expect(result.devF1.student).toBeGreaterThanOrEqual(0);
    const marker = JSON.parse(readFileSync(join(runDir, "teacher", "teacher.json"), "utf8"));
    const config = JSON.parse(readFileSync(join(runDir, "teacher", marker.checkpoint, "model", "config.json"), "utf8"));
    expect(Object.values(config.id2label)).toEqual(["O", "I-LOC", "I-MISC", "I-ORG", "I-PER"]);
    const plan = lines.find((l) => l.includes("student:"))!;
    expect(plan).toMatch(/2 layers from teacher layers \[\d, \d\], GeneralDistiller, 1 epochs of hidden_mse .* alone, then 1 epochs/);
    expect(plan).toMatch(/KD on each word's first sub-token/);
    expect(existsSync(join(runDir, "intermediate"))).toBe(false);
  });
});
