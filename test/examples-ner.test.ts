/** The pieces examples/ner.ts adds: NER augmentation (teacher-labelled copies) and the teacher marker that lets a run reuse a teacher. */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { augmentNerSentence, ioLabels, mentionPool, NER_LABELS, NER_SETTINGS, toIo, withOverrides } from "../examples/ner.js";
import { fingerprintOf, readTeacherMarker, writeTeacherMarker } from "../examples/shared/teacher-marker.js";
import { bioEntities, entityF1, type NerSentence, seededRng } from "../src/data/index.js";
import { makeTinyBert, tempDir } from "./helpers/fixtures.js";

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
