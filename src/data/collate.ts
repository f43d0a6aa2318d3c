/**
 * Batching helpers for tokenized data kept as one record of [n, length] tensors (as a tokenizer returns it):
 * choose rows, cut the padding each batch does not need, shuffle with a seed, bucket by length.
 */
import { Tensor } from "../tensor/tensor.js";
import type { Rng } from "./rng.js";

export type Encoded = Record<string, Tensor>;

/** Rows of a record of tensors (numbers of examples, not batches). */
export function numRows(encoded: Encoded): number {
  const counts = new Set(Object.values(encoded).map((t) => t.shape[0]));
  if (counts.size !== 1) throw new Error(`collate: tensors disagree on the number of rows (${[...counts].join(", ")})`);
  return [...counts][0]!;
}

/** Real (unpadded) length of each row, from a 0/1 mask of [n, length]. */
export function rowLengths(mask: Tensor): number[] {
  const [n, len] = mask.shape as [number, number];
  const out: number[] = new Array(n).fill(0);
  for (let r = 0; r < n; r++) {
    let last = 0;
    for (let j = 0; j < len; j++) if (Number(mask.data[r * len + j]) !== 0) last = j + 1;
    out[r] = last;
  }
  return out;
}

export interface SelectOptions {
  /** Cut the columns of every 2-D tensor to the longest row selected, measured on this mask (default "attention_mask"; null: no cut). */
  trimBy?: string | null;
}

/**
 * The given rows of each tensor, in that order: 1-D tensors [n] and tensors [n, length, ...]; 2-D ones are cut to the
 * longest selected row of the `trimBy` mask, so a batch of short sentences is not padded to the longest of the set.
 */
export function selectRows(encoded: Encoded, rows: readonly number[], options: SelectOptions = {}): Encoded {
  const n = numRows(encoded);
  const trimKey = options.trimBy === undefined ? "attention_mask" : options.trimBy;
  let keep: number | null = null;
  if (trimKey !== null && encoded[trimKey]) {
    const mask = encoded[trimKey]!;
    const len = mask.shape[1]!;
    keep = 1;
    for (const r of rows) {
      for (let j = len - 1; j >= keep; j--) {
        if (Number(mask.data[r * len + j]) !== 0) {
          keep = j + 1;
          break;
        }
      }
    }
  }
  const out: Encoded = {};
  for (const [key, t] of Object.entries(encoded)) {
    for (const r of rows) if (!Number.isInteger(r) || r < 0 || r >= n) throw new RangeError(`selectRows: row ${r} out of [0, ${n})`);
    const rowSize = t.shape.slice(1).reduce((a, b) => a * b, 1);
    if (t.ndim === 2 && keep !== null && keep < t.shape[1]!) {
      const len = t.shape[1]!;
      const data = new (t.data.constructor as new (n: number) => typeof t.data)(rows.length * keep);
      rows.forEach((r, i) => {
        data.set(t.data.subarray(r * len, r * len + keep!) as never, i * keep!);
      });
      out[key] = new Tensor(data, [rows.length, keep], t.dtype);
    } else {
      const data = new (t.data.constructor as new (n: number) => typeof t.data)(rows.length * rowSize);
      rows.forEach((r, i) => {
        data.set(t.data.subarray(r * rowSize, (r + 1) * rowSize) as never, i * rowSize);
      });
      out[key] = new Tensor(data, [rows.length, ...t.shape.slice(1)], t.dtype);
    }
  }
  return out;
}

/** An int64 [n] tensor of class ids. */
export function labelTensor(labels: readonly number[]): Tensor {
  return Tensor.fromTypedArray(
    BigInt64Array.from(labels, (l) => BigInt(l)),
    [labels.length],
    "int64",
  );
}

export interface BatchPlanOptions {
  batchSize: number;
  /** Shuffle the rows (and the batches) with this generator; without one, rows stay in order. */
  rng?: Rng;
  /**
   * Bucket by length: rows are shuffled, cut into pools of `bucketPool` batches, each pool sorted by these lengths and
   * cut into batches, then the batches are shuffled — less padding, still random. Needs `rng`.
   */
  lengths?: readonly number[];
  /** Batches per pool when bucketing (default 50). */
  bucketPool?: number;
  /** Drop a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** Row indices of each batch for n examples. */
export function batchPlan(n: number, options: BatchPlanOptions): number[][] {
  const { batchSize, rng } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchPlan: batchSize must be a positive integer, got ${batchSize}`);
  const order = Array.from({ length: n }, (_, i) => i);
  if (rng) rng.shuffle(order);
  let batches: number[][] = [];
  if (options.lengths && rng) {
    const lengths = options.lengths;
    if (lengths.length !== n) throw new Error(`batchPlan: ${lengths.length} lengths for ${n} rows`);
    const pool = batchSize * (options.bucketPool ?? 50);
    for (let p = 0; p < n; p += pool) {
      const chunk = order.slice(p, p + pool).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
      for (let k = 0; k < chunk.length; k += batchSize) batches.push(chunk.slice(k, k + batchSize));
    }
    rng.shuffle(batches);
  } else {
    for (let k = 0; k < n; k += batchSize) batches.push(order.slice(k, k + batchSize));
  }
  if (options.dropLast) batches = batches.filter((b) => b.length === batchSize);
  return batches;
}

/** Batches of `encoded` (plus extra per-row tensors such as labels), each trimmed to its longest row. */
export function makeBatches(encoded: Encoded, options: BatchPlanOptions & SelectOptions): Encoded[] {
  return batchPlan(numRows(encoded), options).map((rows) => selectRows(encoded, rows, options));
}
