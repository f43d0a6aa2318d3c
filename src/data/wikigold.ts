/**
 * WikiGold: Wikipedia sentences annotated with CoNLL-2003 entity types (LOC, MISC, ORG, PER).
 *
 *   Dominic Balasuriya, Nicky Ringland, Joel Nothman, Tara Murphy, James R. Curran. "Named Entity Recognition in
 *   Wikipedia", Proceedings of the 2009 Workshop on The People's Web Meets NLP. Licensed CC BY 4.0.
 *
 * The file (`wikigold.conll.txt`) has one `word TAG` pair per line, a blank line between sentences and
 * `-DOCSTART- O` lines between documents. Tags are IO (`I-PER`, never `B-`): the reader converts them to BIO, where
 * an entity begins at an `I-X` that follows anything other than `I-X`/`B-X`. (Two adjacent entities of the same type
 * cannot be told apart in IO; they become one.)
 */
import { readFileSync } from "node:fs";
import { seededRng } from "./rng.js";

export const WIKIGOLD_TYPES = ["LOC", "MISC", "ORG", "PER"] as const;
/** The BIO label set, index = class id: O, then B-/I- for each type. */
export const WIKIGOLD_LABELS = ["O", ...WIKIGOLD_TYPES.flatMap((t) => [`B-${t}`, `I-${t}`])] as const;

export const WIKIGOLD_CREDIT =
  "WikiGold (Balasuriya, Ringland, Nothman, Murphy, Curran: Named Entity Recognition in Wikipedia, 2009), CC BY 4.0";

export interface NerSentence {
  /** 0-based document number (documents are separated by -DOCSTART-; empty ones are not counted). */
  doc: number;
  words: string[];
  /** BIO tags, one per word. */
  tags: string[];
}

export interface WikiGold {
  sentences: NerSentence[];
  documents: number;
}

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

/** Parses the CoNLL text (`word TAG` lines). */
export function parseWikiGold(text: string, where = "wikigold"): WikiGold {
  const sentences: NerSentence[] = [];
  // -DOCSTART- separates documents (the file also has one at its end); documents are numbered by content, from 0.
  let doc = 0;
  let docHasWords = false;
  let words: string[] = [];
  let tags: string[] = [];
  const flush = () => {
    if (words.length) sentences.push({ doc, words, tags: ioToBio(tags) });
    words = [];
    tags = [];
  };
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return flush();
    const parts = line.trim().split(/\s+/);
    if (parts.length < 2) throw new Error(`${where}:${i + 1}: expected 'word TAG', got ${JSON.stringify(line)}`);
    const word = parts[0]!;
    const tag = parts[parts.length - 1]!;
    if (word === "-DOCSTART-") {
      flush();
      if (docHasWords) doc += 1;
      docHasWords = false;
      return;
    }
    if (tag !== "O" && !/^[IB]-[A-Z]+$/.test(tag)) throw new Error(`${where}:${i + 1}: unknown tag ${JSON.stringify(tag)}`);
    docHasWords = true;
    words.push(word);
    tags.push(tag);
  });
  flush();
  return { sentences, documents: doc + (docHasWords ? 1 : 0) };
}

/** Reads a WikiGold file (e.g. `wikigold.conll.txt`). */
export function readWikiGold(path: string): WikiGold {
  return parseWikiGold(readFileSync(path, "utf8"), path);
}

/** Entities per type (an entity = a B- tag, after ioToBio). */
export function entityCounts(sentences: readonly NerSentence[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of sentences) for (const t of s.tags) if (t.startsWith("B-")) counts[t.slice(2)] = (counts[t.slice(2)] ?? 0) + 1;
  return counts;
}

/** Class ids of BIO tags in WIKIGOLD_LABELS. */
export function tagIds(tags: readonly string[]): number[] {
  return tags.map((t) => {
    const i = (WIKIGOLD_LABELS as readonly string[]).indexOf(t);
    if (i < 0) throw new Error(`tag ${t} is not one of ${WIKIGOLD_LABELS.join(", ")}`);
    return i;
  });
}

/** A deterministic split by document (sentences of one document stay together), documents shuffled with the seed. */
export function splitByDocument(
  data: WikiGold,
  options: { seed?: number; devFraction?: number; testFraction?: number } = {},
): { train: NerSentence[]; dev: NerSentence[]; test: NerSentence[] } {
  const docs = Array.from({ length: data.documents }, (_, i) => i);
  seededRng(options.seed ?? 42).shuffle(docs);
  const nTest = Math.round(docs.length * (options.testFraction ?? 0.1));
  const nDev = Math.round(docs.length * (options.devFraction ?? 0.1));
  const part = new Map<number, "train" | "dev" | "test">();
  docs.forEach((d, k) => part.set(d, k < nTest ? "test" : k < nTest + nDev ? "dev" : "train"));
  const out = { train: [] as NerSentence[], dev: [] as NerSentence[], test: [] as NerSentence[] };
  for (const s of data.sentences) out[part.get(s.doc)!].push(s);
  return out;
}
