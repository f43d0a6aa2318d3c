/**
 * Text classification data: examples typed by their number of classes, a reader for labelled-text files (tab-separated
 * or JSON lines) that reads the label set from the data (or takes it), and the class count a model head needs.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { showValue, suggestName } from "../config/errors.js";
import { DataFormatError } from "./errors.js";
import type { Split } from "./split.js";

type Ids<N extends number, Acc extends number[] = []> = Acc["length"] extends N ? Acc[number] : Ids<N, [...Acc, Acc["length"]]>;

/** The class ids of an N-class task: `ClassId<2>` is `0 | 1`; `ClassId<number>` is any number. */
export type ClassId<N extends number> = number extends N ? number : Ids<N>;

export interface TextExample<N extends number = number> {
  /** Unique within the data (the readers use `<file>:<line>`). */
  id: string;
  text: string;
  /** Class id: an index into the label names. */
  label: ClassId<N>;
}

/** A split of labelled texts and, optionally, the names of the classes (index = class id) and of the data. */
export interface TextData<N extends number = number> extends Split<TextExample<N>> {
  /** Class names, index = class id; their count is the number of classes. Default: the largest id + 1, named by number. */
  labels?: readonly string[];
  /** The data's name and credit line for logs and summaries. */
  name?: string;
  credit?: string;
}

export interface LabelledText<N extends number = number> {
  examples: TextExample<N>[];
  /** Class names, index = class id. */
  labels: string[];
}

export interface LabelledTextOptions {
  /** "tsv": one example a line, tab-separated columns; "jsonl": one JSON object a line. Default: by extension (.jsonl/.ndjson → jsonl, else tsv). */
  format?: "tsv" | "jsonl";
  /** Where the text is: a column index (tsv) or a field / header name (default: column 1 in tsv, field "text"). */
  text?: number | string;
  /** Where the label is: a column index (tsv) or a field / header name (default: column 0 in tsv, field "label"). */
  label?: number | string;
  /** tsv: the first line names the columns (default false). */
  header?: boolean;
  /** Class names, index = class id. A label outside them is an error. Default: the labels of the data, sorted (numerically when all are integers). */
  labels?: readonly string[];
}

/** The label names of a list of raw labels: sorted, numerically when every one is an integer. */
export function labelNames(raw: Iterable<string>): string[] {
  const names = [...new Set(raw)];
  const numeric = names.every((n) => /^-?\d+$/.test(n));
  return names.sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
}

/** Parses labelled text (see LabelledTextOptions). `source` names it in errors and ids. */
export function parseLabelledText(text: string, options: LabelledTextOptions = {}, source = "data"): LabelledText {
  const format = options.format ?? (/\.(jsonl|ndjson)$/i.test(source) ? "jsonl" : "tsv");
  if (format !== "tsv" && format !== "jsonl")
    throw new RangeError(`parseLabelledText: format must be "tsv" or "jsonl", got ${showValue(format)}`);
  const rows: Array<{ line: number; text: string; label: string }> = [];
  const lines = text.split(/\r?\n/);
  let textKey: number | string = options.text ?? (format === "tsv" ? 1 : "text");
  let labelKey: number | string = options.label ?? (format === "tsv" ? 0 : "label");
  let first = 0;
  if (format === "tsv" && options.header) {
    const names = (lines[0] ?? "").split("\t").map((c) => c.trim());
    const column = (key: number | string, what: string): number => {
      if (typeof key === "number") return key;
      const i = names.indexOf(key);
      if (i < 0) {
        const guess = suggestName(key, names);
        throw new DataFormatError(
          `${source}:1`,
          `no column named ${showValue(key)} for the ${what} in the header (${names.join(", ")})${guess ? `; did you mean ${showValue(guess)}?` : ""}`,
        );
      }
      return i;
    };
    textKey = column(options.text ?? "text", "text");
    labelKey = column(options.label ?? "label", "label");
    first = 1;
  }
  for (let i = first; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    const where = `${source}:${i + 1}`;
    let rawText: unknown;
    let rawLabel: unknown;
    if (format === "jsonl") {
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (error) {
        throw new DataFormatError(where, `not a JSON object: ${(error as Error).message}`);
      }
      if (row === null || typeof row !== "object" || Array.isArray(row))
        throw new DataFormatError(where, `expected a JSON object, got ${showValue(row)}`);
      const r = row as Record<string, unknown>;
      const missing = [textKey, labelKey].find((k) => !(String(k) in r));
      if (missing !== undefined) {
        const guess = suggestName(String(missing), Object.keys(r));
        throw new DataFormatError(
          where,
          `no field ${showValue(String(missing))} in ${showValue(row)}${guess ? `; did you mean ${showValue(guess)}? (set the text/label option)` : ""}`,
        );
      }
      [rawText, rawLabel] = [r[String(textKey)], r[String(labelKey)]];
    } else {
      const cols = line.split("\t");
      const [t, l] = [Number(textKey), Number(labelKey)];
      if (!Number.isInteger(t) || !Number.isInteger(l)) {
        throw new RangeError(
          `parseLabelledText: text and label must be column indices in a tsv without header, got ${showValue(textKey)}, ${showValue(labelKey)}`,
        );
      }
      if (t >= cols.length || l >= cols.length) {
        throw new DataFormatError(
          where,
          `expected a label in column ${l} and a text in column ${t} (tab-separated), got ${cols.length} column${cols.length === 1 ? "" : "s"} in ${showValue(line)}`,
        );
      }
      [rawText, rawLabel] = [cols[t]!.trim(), cols[l]!.trim()];
    }
    if (typeof rawText !== "string" || rawText.trim() === "")
      throw new DataFormatError(where, `empty or missing text (${showValue(rawText)})`);
    if (typeof rawLabel === "number" || typeof rawLabel === "boolean") rawLabel = String(rawLabel);
    if (typeof rawLabel !== "string" || rawLabel === "")
      throw new DataFormatError(where, `the label must be a string or a number, got ${showValue(rawLabel)}`);
    rows.push({ line: i + 1, text: rawText.trim(), label: rawLabel });
  }
  if (!rows.length) throw new DataFormatError(source, "no examples (blank lines only)");
  const labels = options.labels ? [...options.labels] : labelNames(rows.map((r) => r.label));
  const index = new Map(labels.map((l, i) => [l, i]));
  const name = basename(source);
  const examples = rows.map((r) => {
    const label = index.get(r.label);
    if (label === undefined) {
      const guess = suggestName(r.label, labels);
      throw new DataFormatError(
        `${source}:${r.line}`,
        `label ${showValue(r.label)} is not one of the labels given (${labels.join(", ")})${guess ? `; did you mean ${showValue(guess)}?` : ""}`,
      );
    }
    return { id: `${name}:${r.line}`, text: r.text, label };
  });
  return { examples, labels };
}

/** Reads a labelled-text file (see parseLabelledText); errors name `path:line`. */
export function readLabelledText(path: string, options: LabelledTextOptions = {}): LabelledText {
  return parseLabelledText(readFileSync(path, "utf8"), options, path);
}

/**
 * The number of classes of a split, checked: `labels.length` when names are given, else the largest id + 1 (at least 2);
 * every part must hold examples and every id must be an integer in [0, classes).
 */
export function numClasses(data: TextData, name = "data"): number {
  const parts = ["train", "dev", "test"] as const;
  for (const p of parts) {
    if (!Array.isArray(data[p]) || data[p].length === 0)
      throw new DataFormatError(`${name}.${p}`, `no examples: train, dev and test each need at least one`);
  }
  const ids = parts.flatMap((p) => data[p].map((e) => e.label as number));
  const n = data.labels ? data.labels.length : Math.max(...ids.filter(Number.isInteger)) + 1;
  if (!(n >= 2))
    throw new DataFormatError(`${name}.labels`, `a classifier needs at least 2 classes, got ${data.labels ? showValue(data.labels) : n}`);
  for (const p of parts) {
    data[p].forEach((e, i) => {
      if (!Number.isInteger(e.label) || (e.label as number) < 0 || (e.label as number) >= n) {
        throw new DataFormatError(
          `${name}.${p}[${i}].label`,
          `${showValue(e.label)} is not a class id in [0, ${n})${data.labels ? ` (labels ${data.labels.join(", ")})` : ""}`,
        );
      }
      if (typeof e.text !== "string" || e.text.trim() === "")
        throw new DataFormatError(`${name}.${p}[${i}].text`, `empty or missing text (${showValue(e.text)})`);
    });
  }
  return n;
}
