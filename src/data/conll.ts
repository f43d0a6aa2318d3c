/**
 * CoNLL-style token files: one token per line in columns (the word, by default first; the tag, by default last, which
 * is CoNLL-2003's NER column), separated by tabs or runs of spaces, a blank line between sentences, and optionally
 * `-DOCSTART-` lines between documents (CoNLL-2003, WikiGold). Tags are IO or BIO; the reader turns IO into BIO, where
 * an entity begins at an `I-X` that follows anything other than `I-X`/`B-X` (two adjacent entities of the same type
 * cannot be told apart in IO; they become one). The label set is read from the data or given.
 */
import { readFileSync } from "node:fs";
import { showValue, suggestName } from "../config/errors.js";
import { DataFormatError, DataSplitError } from "./errors.js";
import { seededRng } from "./rng.js";
import { cutParts, describeCounts, emptyParts, type Split, type SplitOptions, splitFractions, splitStratified } from "./split.js";

export interface NerSentence {
  /** 0-based document number (documents are separated by -DOCSTART-; empty ones are not counted). */
  doc: number;
  words: string[];
  /** BIO tags, one per word. */
  tags: string[];
}

export interface ConllCorpus {
  sentences: NerSentence[];
  /** Documents that hold a sentence. A file without `-DOCSTART-` lines is one document. */
  documents: number;
  /** The BIO label set, index = class id: the one given, or `conllLabels` of the sentences. */
  labels: string[];
}

export interface ConllOptions {
  /** Column of the word, 0-based (default 0). */
  wordColumn?: number;
  /** Column of the tag, 0-based; negative counts from the end (default -1: the last). */
  tagColumn?: number;
  /** "auto" (default): a line with a tab is cut at tabs, any other at runs of white space. */
  separator?: "auto" | "tab" | "whitespace";
  /** The label set, index = class id (e.g. a model's id2label). A tag outside it is an error. Default: read from the data. */
  labels?: readonly string[];
}

const DOCSTART = "-DOCSTART-";
const TAG = /^[BI]-\S+$/;

/** IO (or mixed IO/BIO) tags → BIO: `I-X` after something that is not X becomes `B-X`. */
export function ioToBio(tags: readonly string[]): string[] {
  let previous = "O";
  return tags.map((tag) => {
    let out = tag;
    if (tag.startsWith("I-") && previous.slice(2) !== tag.slice(2)) out = `B-${tag.slice(2)}`;
    previous = tag === "O" ? "O" : out;
    return out;
  });
}

/** The BIO label set of the sentences: "O", then B- and I- of each entity type, types in sorted order. */
export function conllLabels(sentences: readonly NerSentence[]): string[] {
  const types = new Set<string>();
  for (const s of sentences) for (const t of s.tags) if (t !== "O") types.add(t.slice(2));
  return ["O", ...[...types].sort().flatMap((t) => [`B-${t}`, `I-${t}`])];
}

function tagProblem(tag: string, labels?: readonly string[]): string {
  if (labels) {
    const guess = suggestName(tag, labels);
    return `tag ${showValue(tag)} is not one of the labels given (${labels.join(", ")})${guess ? `; did you mean ${showValue(guess)}?` : ""}`;
  }
  const scheme = /^[ESLU]-/.test(tag) ? " (BIOES/BILOU tags: convert them to BIO first)" : "";
  return `tag ${showValue(tag)} is not O, B-<type> or I-<type>${scheme}; if the tags are in another column, set tagColumn`;
}

function columns(line: string, separator: NonNullable<ConllOptions["separator"]>): string[] {
  const tabs = separator === "tab" || (separator === "auto" && line.includes("\t"));
  return tabs ? line.split("\t").map((c) => c.trim()) : line.trim().split(/\s+/);
}

/** Parses CoNLL text. `source` names it in errors (`source:line`). */
export function parseConll(text: string, options: ConllOptions = {}, source = "conll"): ConllCorpus {
  const wordColumn = options.wordColumn ?? 0;
  const tagColumn = options.tagColumn ?? -1;
  const separator = options.separator ?? "auto";
  for (const [name, value] of [
    ["wordColumn", wordColumn],
    ["tagColumn", tagColumn],
  ] as const) {
    if (!Number.isInteger(value)) throw new RangeError(`parseConll: ${name} must be an integer column index, got ${showValue(value)}`);
  }
  if (wordColumn < 0) throw new RangeError(`parseConll: wordColumn must be >= 0, got ${wordColumn}`);
  if (!["auto", "tab", "whitespace"].includes(separator)) {
    throw new RangeError(`parseConll: separator must be "auto", "tab" or "whitespace", got ${showValue(separator)}`);
  }
  const given = options.labels ? [...options.labels] : undefined;
  if (given) {
    const bad = given.find((l) => l !== "O" && !TAG.test(l));
    if (bad !== undefined) throw new RangeError(`parseConll: labels: ${showValue(bad)} is not O, B-<type> or I-<type>`);
    if (new Set(given).size !== given.length) throw new RangeError(`parseConll: labels: ${showValue(given)} has a label twice`);
  }
  const sentences: NerSentence[] = [];
  let doc = 0;
  let docHasWords = false;
  let words: string[] = [];
  let tags: string[] = [];
  let lines: number[] = [];
  const flush = () => {
    if (words.length) {
      const bio = ioToBio(tags);
      if (given)
        bio.forEach((t, k) => {
          if (!given.includes(t))
            throw new DataFormatError(
              `${source}:${lines[k]}`,
              tagProblem(t, given) + (t !== tags[k] ? ` (read ${showValue(tags[k])}, which becomes ${showValue(t)} in BIO)` : ""),
            );
        });
      sentences.push({ doc, words, tags: bio });
    }
    words = [];
    tags = [];
    lines = [];
  };
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") {
      flush();
      return;
    }
    const where = `${source}:${i + 1}`;
    const parts = columns(line, separator);
    if (parts[wordColumn] === DOCSTART || parts[0] === DOCSTART) {
      flush();
      if (docHasWords) doc += 1;
      docHasWords = false;
      return;
    }
    const t = tagColumn < 0 ? parts.length + tagColumn : tagColumn;
    if (parts.length < 2 || t < 0 || t >= parts.length || wordColumn >= parts.length || t === wordColumn) {
      throw new DataFormatError(
        where,
        `expected a word and a tag, got ${parts.length} column${parts.length === 1 ? "" : "s"} in ${showValue(line)} ` +
          `(wordColumn ${wordColumn}, tagColumn ${tagColumn}; separator ${separator})`,
      );
    }
    const tag = parts[t]!;
    if (tag !== "O" && !TAG.test(tag)) throw new DataFormatError(where, tagProblem(tag));
    docHasWords = true;
    words.push(parts[wordColumn]!);
    tags.push(tag);
    lines.push(i + 1);
  });
  flush();
  return { sentences, documents: doc + (docHasWords ? 1 : 0), labels: given ?? conllLabels(sentences) };
}

/** Reads a CoNLL file (see parseConll); errors name `path:line`. */
export function readConll(path: string, options: ConllOptions = {}): ConllCorpus {
  return parseConll(readFileSync(path, "utf8"), options, path);
}

/** Entities per type (an entity = a B- tag, after ioToBio). */
export function entityCounts(sentences: readonly NerSentence[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of sentences) for (const t of s.tags) if (t.startsWith("B-")) counts[t.slice(2)] = (counts[t.slice(2)] ?? 0) + 1;
  return counts;
}

/** Class ids of BIO tags in `labels` (index = class id), e.g. a corpus's `labels`. */
export function tagIds(tags: readonly string[], labels: readonly string[]): number[] {
  return tags.map((t) => {
    const i = labels.indexOf(t);
    if (i < 0) throw new RangeError(`tagIds: ${tagProblem(t, labels)}`);
    return i;
  });
}

export interface DocumentSplitOptions extends SplitOptions {
  /**
   * When the documents are too few to give every part one (e.g. a file without `-DOCSTART-` lines, which is one
   * document): "error" (default) throws DataSplitError; "sentences" splits by sentence instead (splitBySentence,
   * same seed and fractions) and says so through `warn`.
   */
  fallback?: "error" | "sentences";
  /** Where the fallback's warning goes (default console.warn). */
  warn?: (message: string) => void;
}

/**
 * A deterministic split by document (sentences of one document stay together), documents shuffled with the seed and
 * cut by the fractions (rounded). Each part keeps the input's order.
 */
export function splitByDocument(
  data: { sentences: readonly NerSentence[]; documents: number },
  options: DocumentSplitOptions = {},
): Split<NerSentence> {
  const fractions = splitFractions(options, "splitByDocument");
  if (options.fallback !== undefined && options.fallback !== "error" && options.fallback !== "sentences") {
    throw new RangeError(`splitByDocument: fallback must be "error" or "sentences", got ${showValue(options.fallback)}`);
  }
  if (!data.sentences.length) throw new DataSplitError("splitByDocument: the data has no sentences");
  const docs = Array.from({ length: data.documents }, (_, i) => i);
  seededRng(options.seed ?? 42).shuffle(docs);
  const parts = cutParts(docs.length, fractions);
  const counts = { train: 0, dev: 0, test: 0 };
  for (const p of parts) counts[p] += 1;
  const empty = emptyParts(counts, fractions);
  if (empty.length) {
    const problem =
      `splitByDocument: the data has ${data.documents} document${data.documents === 1 ? "" : "s"}` +
      (data.documents === 1 ? " (a file without -DOCSTART- lines is one document)" : "") +
      `, too few for dev ${fractions.devFraction} and test ${fractions.testFraction} of them (${describeCounts(counts)} documents; ` +
      `${empty.join(" and ")} would be empty)`;
    if (options.fallback === "sentences") {
      (options.warn ?? console.warn)(`${problem}: splitting by sentence instead`);
      return splitBySentence(data.sentences, options);
    }
    throw new DataSplitError(`${problem}: split by sentence with splitBySentence(sentences, { seed }) or pass { fallback: "sentences" }`);
  }
  const part = new Map<number, keyof Split<NerSentence>>();
  for (const [k, d] of docs.entries()) part.set(d, parts[k]!);
  const out: Split<NerSentence> = { train: [], dev: [], test: [] };
  for (const s of data.sentences) {
    const p = part.get(s.doc);
    if (p === undefined) throw new RangeError(`splitByDocument: a sentence has doc ${s.doc}, outside [0, ${data.documents})`);
    out[p].push(s);
  }
  return out;
}

/** A deterministic split by sentence, shuffled with the seed (for data without documents). Each part keeps the input's order. */
export function splitBySentence(sentences: readonly NerSentence[], options: SplitOptions = {}): Split<NerSentence> {
  return splitStratified(sentences, () => "", options, "splitBySentence");
}
