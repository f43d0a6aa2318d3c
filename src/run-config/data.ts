/**
 * The data of a run file: labelled rows from JSONL, CSV or TSV files, tokenised by the teacher's tokenizer or read
 * already tokenised, as the tensors `makeBatches` cuts into batches.
 */
import { readFileSync } from "node:fs";
import { labelNames } from "../data/classification.js";
import { labelTensor } from "../data/collate.js";
import { DataFormatError } from "../data/errors.js";
import { Tensor } from "../tensor/tensor.js";
import type { TokenizerHandle } from "../worker/tokenizer-handle.js";
import type { RunFile } from "./schema.js";

export type Format = "jsonl" | "csv" | "tsv";

/** One row: its cells by column or field name, and where it is (`file:line`). */
export interface Row {
  where: string;
  cells: Record<string, unknown>;
}

export function formatOf(file: string, given?: Format): Format {
  if (given) return given;
  if (/\.(jsonl|ndjson)$/i.test(file)) return "jsonl";
  if (/\.csv$/i.test(file)) return "csv";
  if (/\.(tsv|txt)$/i.test(file)) return "tsv";
  throw new DataFormatError(file, "cannot tell the format from the extension: name it .jsonl, .csv or .tsv, or set data.format");
}

/** RFC 4180 CSV (quoted fields with "" escapes and line breaks inside quotes); rows with their 1-based first line. */
export function parseDelimited(text: string, separator: string): Array<{ line: number; fields: string[] }> {
  const rows: Array<{ line: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === "\n") line++;
        field += c;
      }
    } else if (c === '"' && field === "") quoted = true;
    else if (c === separator) {
      fields.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      fields.push(field);
      if (fields.some((f) => f !== "")) rows.push({ line: rowLine, fields });
      fields = [];
      field = "";
      line++;
      rowLine = line;
    } else field += c;
  }
  fields.push(field);
  if (fields.some((f) => f !== "")) rows.push({ line: rowLine, fields });
  return rows;
}

/** The rows of a data file; CSV and TSV files name their columns in a header line. */
export function readRows(file: string, format: Format): Row[] {
  const text = readFileSync(file, "utf8");
  if (format === "jsonl") {
    const rows: Row[] = [];
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim()) return;
      let cells: unknown;
      try {
        cells = JSON.parse(line);
      } catch (error) {
        throw new DataFormatError(`${file}:${i + 1}`, `not valid JSON (${(error as Error).message})`);
      }
      if (cells === null || typeof cells !== "object" || Array.isArray(cells)) {
        throw new DataFormatError(`${file}:${i + 1}`, "expected one JSON object a line");
      }
      rows.push({ where: `${file}:${i + 1}`, cells: cells as Record<string, unknown> });
    });
    return rows;
  }
  const [header, ...body] = parseDelimited(text, format === "csv" ? "," : "\t");
  if (!header) return [];
  const names = header.fields.map((f) => f.trim());
  return body.map(({ line, fields }) => {
    if (fields.length !== names.length) {
      throw new DataFormatError(`${file}:${line}`, `${fields.length} columns where the header has ${names.length} (${names.join(", ")})`);
    }
    return { where: `${file}:${line}`, cells: Object.fromEntries(names.map((n, i) => [n, fields[i]])) };
  });
}

function cell(row: Row, name: string, what: string): unknown {
  if (!Object.hasOwn(row.cells, name)) {
    throw new DataFormatError(
      row.where,
      `no ${what} '${name}' (the row has ${Object.keys(row.cells).join(", ") || "nothing"}); set data.${what} to the right name`,
    );
  }
  return row.cells[name];
}

/** The label set: given, or the training rows' labels sorted (numerically when all are integers). */
export function labelSet(rows: readonly Row[], data: RunFile["data"]): string[] {
  return data.labels ? [...data.labels] : labelNames(rows.map((r) => String(cell(r, data.label, "label"))));
}

function classIds(rows: readonly Row[], data: RunFile["data"], labels: readonly string[]): number[] {
  return rows.map((r) => {
    const raw = String(cell(r, data.label, "label"));
    const id = labels.indexOf(raw);
    if (id < 0) throw new DataFormatError(r.where, `label '${raw}' is not one of ${labels.map((l) => `'${l}'`).join(", ")}`);
    return id;
  });
}

function intList(row: Row, name: string): number[] {
  const value = cell(row, name, "text");
  const list = typeof value === "string" ? (JSON.parse(value) as unknown) : value;
  if (!Array.isArray(list) || !list.every((v) => Number.isInteger(v))) {
    throw new DataFormatError(row.where, `${name} must be a list of integers (token ids)`);
  }
  return list as number[];
}

/** Pads rows of token ids with 0 into an int64 [rows, longest] tensor. */
function padded(lists: readonly number[][]): Tensor {
  const width = Math.max(1, ...lists.map((l) => l.length));
  const data = new BigInt64Array(lists.length * width);
  lists.forEach((l, r) => {
    l.forEach((v, j) => {
      data[r * width + j] = BigInt(v);
    });
  });
  return Tensor.fromTypedArray(data, [lists.length, width], "int64");
}

/** A split's tensors: the tokenizer's (or the file's) inputs and `labels`. */
export async function encodeRows(
  rows: readonly Row[],
  data: RunFile["data"],
  labels: readonly string[],
  tokenizer: TokenizerHandle | null,
): Promise<Record<string, Tensor>> {
  const ids = labelTensor(classIds(rows, data, labels));
  if (data.pretokenized || !tokenizer) {
    const inputIds = rows.map((r) => intList(r, "input_ids"));
    const out: Record<string, Tensor> = {
      input_ids: padded(inputIds),
      attention_mask: padded(
        rows.map((r, i) => (Object.hasOwn(r.cells, "attention_mask") ? intList(r, "attention_mask") : inputIds[i]!.map(() => 1))),
      ),
    };
    if (rows.length && Object.hasOwn(rows[0]!.cells, "token_type_ids"))
      out.token_type_ids = padded(rows.map((r) => intList(r, "token_type_ids")));
    return { ...out, labels: ids };
  }
  const texts = rows.map((r) => {
    const t = cell(r, data.text, "text");
    if (typeof t !== "string" || !t.trim()) throw new DataFormatError(r.where, `${data.text} must be a non-empty string`);
    return t;
  });
  const { token_type_ids, ...encoded } = await tokenizer.encode(texts, { maxLength: data.maxLength, padding: "longest", truncation: true });
  return { ...encoded, ...(data.tokenTypeIds && token_type_ids ? { token_type_ids } : {}), labels: ids };
}
