/** Per-example cache keys, and row slicing/stacking between batch tensors and per-example records. */
import { createHash } from "node:crypto";
import { Tensor } from "../tensor/tensor.js";

export interface ExampleKeyOptions {
  /** Name of an int32/int64 tensor of shape [B] holding stable example ids. */
  idKey?: string;
}

/**
 * One key per example. With `idKey`: "id:<n>". Otherwise "h:" + 32 hex digits of a sha256 over the example's
 * content: every tensor's name, dtype and shape, and its row (tensors whose leading dim is the batch size) or all
 * of it (the others). Content keys depend on padding: the same text padded to another length is another key.
 */
export function exampleKeys(batch: Record<string, Tensor>, options: ExampleKeyOptions = {}): string[] {
  if (options.idKey !== undefined) return idKeys(batch, options.idKey);
  const size = batchSize(batch);
  const names = Object.keys(batch).sort();
  const keys: string[] = [];
  for (let i = 0; i < size; i++) {
    const hash = createHash("sha256");
    for (const name of names) {
      const t = batch[name]!;
      const batched = isBatched(t, size);
      const shape = batched ? t.shape.slice(1) : t.shape;
      // JSON keeps the header unambiguous; the byte count then follows from dtype and shape.
      hash.update(`${JSON.stringify([name, t.dtype, batched ? "row" : "whole", shape])}\n`);
      hash.update(batched ? rowBytes(t, i) : t.bytes());
    }
    keys.push(`h:${hash.digest("hex").slice(0, 32)}`);
  }
  return keys;
}

function idKeys(batch: Record<string, Tensor>, idKey: string): string[] {
  const ids = batch[idKey];
  if (ids === undefined) throw new TypeError(`exampleKeys: the batch has no "${idKey}" tensor (idKey)`);
  if ((ids.dtype !== "int64" && ids.dtype !== "int32") || ids.ndim !== 1) {
    throw new TypeError(`exampleKeys: "${idKey}" must be an int64 or int32 tensor of shape [B], got ${ids}`);
  }
  const keys: string[] = [];
  for (let i = 0; i < ids.size; i++) keys.push(`id:${String(ids.data[i])}`);
  return keys;
}

/** The batch size: the most common leading dim among the tensors with at least one dim (ties: first by name). */
export function batchSize(batch: Record<string, Tensor>): number {
  const counts = new Map<number, number>();
  for (const name of Object.keys(batch).sort()) {
    const t = batch[name]!;
    if (t.ndim >= 1) counts.set(t.shape[0]!, (counts.get(t.shape[0]!) ?? 0) + 1);
  }
  let best = -1;
  let bestCount = 0;
  for (const [dim, count] of counts) {
    if (count > bestCount) {
      best = dim;
      bestCount = count;
    }
  }
  if (best < 0) throw new TypeError("exampleKeys: the batch has no tensor with a batch dimension");
  return best;
}

function isBatched(t: Tensor, size: number): boolean {
  return t.ndim >= 1 && t.shape[0] === size;
}

function rowLength(t: Tensor): number {
  return t.shape.slice(1).reduce((a, b) => a * b, 1) * t.data.BYTES_PER_ELEMENT;
}

function rowBytes(t: Tensor, i: number): Uint8Array {
  const n = rowLength(t);
  return t.bytes().subarray(i * n, (i + 1) * n);
}

/** Row `i` as a view sharing `t`'s memory (shape without the leading dim). */
export function rowView(t: Tensor, i: number): Tensor {
  checkRow(t, i, "rowView");
  return Tensor.fromBytes(rowBytes(t, i), t.shape.slice(1), t.dtype);
}

/** A copy of row `i` (shape without the leading dim). */
export function sliceRow(t: Tensor, i: number): Tensor {
  checkRow(t, i, "sliceRow");
  return Tensor.fromBytes(rowBytes(t, i).slice(), t.shape.slice(1), t.dtype);
}

function checkRow(t: Tensor, i: number, fn: string): void {
  if (t.ndim === 0) throw new TypeError(`${fn}: ${t} has no rows`);
  if (!Number.isInteger(i) || i < 0 || i >= t.shape[0]!) throw new RangeError(`${fn}: no row ${i} in ${t}`);
}

/** Rows of equal dtype and shape → one new tensor with a leading dim of rows.length. */
export function stackRows(rows: readonly Tensor[]): Tensor {
  const first = rows[0];
  if (first === undefined) throw new TypeError("stackRows: no rows (the dtype and shape are unknown)");
  for (const row of rows) {
    if (row.dtype !== first.dtype || !sameShape(row.shape, first.shape)) {
      throw new TypeError(`stackRows: rows differ: ${first} vs ${row}`);
    }
  }
  const out = Tensor.zeros([rows.length, ...first.shape], first.dtype);
  const bytes = out.bytes();
  const n = first.data.byteLength;
  rows.forEach((row, i) => {
    bytes.set(row.bytes(), i * n);
  });
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
