/** The generic data readers and splits: CoNLL files of any label set and layout, labelled-text files, and splits that refuse to return an empty part. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type ClassId,
  conllLabels,
  DataFormatError,
  DataSplitError,
  numClasses,
  parseConll,
  parseLabelledText,
  readConll,
  readLabelledText,
  splitByDocument,
  splitBySentence,
  splitStratified,
  type TextExample,
  tagIds,
} from "../src/data/index.js";
import { useTempDir } from "./helpers/fixtures.js";

const tmp = useTempDir("tbts-data-");

/** Twitter-style NER: lower-case types with dashes, tab-separated, BIO, no -DOCSTART-. */
function tweets(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      `@user${i}\tO`,
      "loves\tO",
      i % 2 ? "New\tB-geo-loc" : "Acme\tB-company",
      i % 2 ? "York\tI-geo-loc" : "Inc\tI-company",
      `#${i}\tO`,
      "",
    );
  }
  return out.join("\n");
}

describe("CoNLL reader", () => {
  it("reads a tab-separated file without -DOCSTART- and takes its label set from the data", () => {
    const path = join(tmp.path, "tweets.conll");
    writeFileSync(path, tweets(10));
    const corpus = readConll(path);
    expect(corpus.documents).toBe(1);
    expect(corpus.sentences).toHaveLength(10);
    expect(corpus.sentences[1]).toEqual({
      doc: 0,
      words: ["@user1", "loves", "New", "York", "#1"],
      tags: ["O", "O", "B-geo-loc", "I-geo-loc", "O"],
    });
    expect(corpus.labels).toEqual(["O", "B-company", "I-company", "B-geo-loc", "I-geo-loc"]);
    expect(conllLabels(corpus.sentences)).toEqual(corpus.labels);
    expect(tagIds(corpus.sentences[1]!.tags, corpus.labels)).toEqual([0, 0, 3, 4, 0]);
    expect(() => tagIds(["B-person"], corpus.labels)).toThrow(/tag "B-person" is not one of the labels given \(O, B-company/);
  });

  it("reads CoNLL-2003's four columns (tag last, or a chosen column), documents by -DOCSTART-, and words with spaces in tab-separated files", () => {
    const text =
      "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n-DOCSTART- -X- -X- O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n";
    const c = parseConll(text);
    expect(c.documents).toBe(2);
    expect(c.sentences.map((s) => [s.doc, s.tags])).toEqual([
      [0, ["B-ORG", "O", "B-MISC"]],
      [1, ["B-PER", "I-PER"]],
    ]);
    expect(c.labels).toEqual(["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]);
    // the chunk column, counted from the start
    expect(parseConll(text, { tagColumn: 2 }).sentences[0]!.tags).toEqual(["B-NP", "B-VP", "B-NP"]);
    // tabs: a word may hold a space; a lone -DOCSTART- line is a document break
    const tabbed = parseConll("-DOCSTART-\n\nNew York\tI-LOC\ncity\tO\n");
    expect(tabbed.sentences).toEqual([{ doc: 0, words: ["New York", "city"], tags: ["B-LOC", "O"] }]);
    expect(parseConll("a b\tO\n", { separator: "whitespace" }).sentences[0]!.words).toEqual(["a"]);
  });

  it("checks tags against given labels and names the file and line of a bad one", () => {
    const labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];
    const c = parseConll("John I-PER\nin O\nRome I-LOC\n", { labels });
    expect(c.labels).toEqual(labels);
    expect(c.sentences[0]!.tags).toEqual(["B-PER", "O", "B-LOC"]);
    const bad = (() => {
      try {
        parseConll("John B-PER\n\nAcme B-ORG\n", { labels }, "corpus.txt");
      } catch (error) {
        return error;
      }
    })();
    expect(bad).toBeInstanceOf(DataFormatError);
    expect((bad as DataFormatError).where).toBe("corpus.txt:3");
    expect((bad as Error).message).toMatch(/tag "B-ORG" is not one of the labels given \(O, B-PER, I-PER, B-LOC, I-LOC\)/);
    expect(() => parseConll("x B-PERS\n", { labels })).toThrow(/did you mean "B-PER"/);
    expect(() => parseConll("John S-PER\n", {}, "f.txt")).toThrow(/f\.txt:1: tag "S-PER" is not O, B-<type> or I-<type> \(BIOES/);
    expect(() => parseConll("a O\nlonely\n", {}, "f.txt")).toThrow(/f\.txt:2: expected a word and a tag, got 1 column/);
    expect(() => parseConll("a NN O\n", { tagColumn: 1 })).toThrow(/tag "NN" is not O.*set tagColumn/);
    expect(() => parseConll("a O\n", { labels: ["O", "PER"] })).toThrow(/labels: "PER" is not O, B-<type> or I-<type>/);
  });
});

describe("splits", () => {
  const oneDocument = parseConll(tweets(40));

  it("refuses to split a single document by document instead of returning empty dev and test", () => {
    const error = (() => {
      try {
        splitByDocument(oneDocument);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(DataSplitError);
    expect((error as Error).message).toMatch(
      /the data has 1 document \(a file without -DOCSTART- lines is one document\).*train 1, dev 0, test 0 documents; dev and test would be empty.*splitBySentence/,
    );
    // three documents are still too few for 10 % dev and test
    expect(() => splitByDocument({ sentences: oneDocument.sentences.map((s, i) => ({ ...s, doc: i % 3 })), documents: 3 })).toThrow(
      DataSplitError,
    );
    expect(() => splitByDocument({ sentences: [], documents: 0 })).toThrow(/no sentences/);
    expect(() => splitByDocument(oneDocument, { devFraction: 0.6, testFraction: 0.5 })).toThrow(/sum < 1/);
  });

  it("falls back to a seeded sentence split with a warning when asked", () => {
    const warnings: string[] = [];
    const split = splitByDocument(oneDocument, { seed: 3, fallback: "sentences", warn: (m) => void warnings.push(m) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/1 document.*splitting by sentence instead/);
    expect(split).toEqual(splitBySentence(oneDocument.sentences, { seed: 3 }));
    expect([split.train.length, split.dev.length, split.test.length]).toEqual([32, 4, 4]);
    const all = [...split.train, ...split.dev, ...split.test].map((s) => s.words[0]);
    expect(new Set(all).size).toBe(40);
    expect(splitBySentence(oneDocument.sentences, { seed: 4 }).test).not.toEqual(split.test);
    // each part keeps the input's order
    const order = (xs: { words: string[] }[]) => xs.map((x) => Number(x.words[0]!.slice(5)));
    expect(order(split.train)).toEqual([...order(split.train)].sort((a, b) => a - b));
  });

  it("splits documents when there are enough, keeping each document in one part", () => {
    const docs = { sentences: oneDocument.sentences.map((s, i) => ({ ...s, doc: i % 20 })), documents: 20 };
    const split = splitByDocument(docs, { seed: 1 });
    const of = (xs: { doc: number }[]) => new Set(xs.map((x) => x.doc));
    expect([of(split.train).size, of(split.dev).size, of(split.test).size]).toEqual([16, 2, 2]);
    for (const d of of(split.test)) expect(of(split.train).has(d) || of(split.dev).has(d)).toBe(false);
  });

  it("stratified splits refuse data too small for a part", () => {
    const items = [1, 2, 3].map((i) => ({ id: String(i), label: 0 }));
    expect(() => splitStratified(items, (e) => String(e.label))).toThrow(
      /3 items are too few for dev 0.1 and test 0.1 \(train 3, dev 0, test 0; dev and test would be empty\)/,
    );
    expect(splitStratified(items, (e) => String(e.label), { devFraction: 0, testFraction: 0 }).train).toHaveLength(3);
  });
});

describe("labelled-text reader", () => {
  it("reads label<TAB>text lines, names the classes from the data and numbers them in sorted order", () => {
    const path = join(tmp.path, "sms.tsv");
    writeFileSync(path, "ham\tsee you at 5\nspam\tWIN a prize now\n\nham\tok thanks\n");
    const { examples, labels } = readLabelledText(path);
    expect(labels).toEqual(["ham", "spam"]);
    expect(examples).toEqual([
      { id: "sms.tsv:1", text: "see you at 5", label: 0 },
      { id: "sms.tsv:2", text: "WIN a prize now", label: 1 },
      { id: "sms.tsv:4", text: "ok thanks", label: 0 },
    ]);
    expect(parseLabelledText("10\ta\n2\tb\n0\tc\n").labels).toEqual(["0", "2", "10"]);
    expect(() => readLabelledText(path, { labels: ["ham", "spm"] })).toThrow(
      /sms\.tsv:2: label "spam" is not one of the labels given \(ham, spm\); did you mean "spm"/,
    );
    expect(() => parseLabelledText("just text\n", {}, "x.tsv")).toThrow(/x\.tsv:1: expected a label in column 0 and a text in column 1/);
  });

  it("reads a header's named columns and JSON lines", () => {
    const sst = parseLabelledText("sentence\tlabel\ngreat film\t1\ndull\t0\n", { header: true, text: "sentence" }, "train.tsv");
    expect(sst.examples.map((e) => [e.text, e.label])).toEqual([
      ["great film", 1],
      ["dull", 0],
    ]);
    expect(() => parseLabelledText("sentence\tlabel\na\t1\n", { header: true }, "t.tsv")).toThrow(
      /t\.tsv:1: no column named "text" for the text in the header \(sentence, label\)/,
    );
    const three = parseLabelledText('{"text": "a", "label": 2}\n{"text": "b", "label": 0}\n{"text": "c", "label": 1}\n', {}, "d.jsonl");
    expect(three.labels).toEqual(["0", "1", "2"]);
    expect(three.examples.map((e) => e.label)).toEqual([2, 0, 1]);
    expect(() => parseLabelledText('{"txt": "a", "label": 1}\n', {}, "d.jsonl")).toThrow(/d\.jsonl:1: no field "text".*did you mean "txt"/);
  });

  it("counts classes from the data or the names and checks every example", () => {
    const ex = (label: number, text = "t"): TextExample => ({ id: text, text, label });
    expect(numClasses({ train: [ex(0), ex(2)], dev: [ex(1)], test: [ex(0)] })).toBe(3);
    expect(numClasses({ train: [ex(0)], dev: [ex(1)], test: [ex(0)], labels: ["a", "b", "c", "d"] })).toBe(4);
    expect(() => numClasses({ train: [ex(0)], dev: [], test: [ex(0)] })).toThrow(/data\.dev: no examples/);
    expect(() => numClasses({ train: [ex(0)], dev: [ex(0)], test: [ex(0)] })).toThrow(/at least 2 classes/);
    expect(() => numClasses({ train: [ex(0), ex(3)], dev: [ex(1)], test: [ex(0)], labels: ["a", "b"] })).toThrow(
      /data\.train\[1\]\.label: 3 is not a class id in \[0, 2\) \(labels a, b\)/,
    );
    // the label type follows the class count
    const binary: TextExample<2> = { id: "x", text: "y", label: 1 };
    const three: ClassId<3>[] = [0, 1, 2];
    // @ts-expect-error 2 is not a class of a two-class task
    const wrong: TextExample<2> = { id: "x", text: "y", label: 2 };
    expect([binary.label, three.length, wrong.label]).toEqual([1, 3, 2]);
  });
});
