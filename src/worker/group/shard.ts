/**
 * Splitting a global batch along its first (batch) dimension into one equal shard per rank, and joining per-rank
 * results back. A batch that does not split evenly is refused: equal shards are what make N ranks equal one rank
 * on the whole batch (DDP averages the ranks' gradients with equal weights).
 */
import { Tensor } from "../../tensor/tensor.js";

/** A global batch that does not split into equal shards, or a tensor in it without the batch dimension. */
export class ShardError extends Error {
  override readonly name = "ShardError";
}

/** The request arguments that hold per-example rows, by op: everything else goes to every rank unchanged. */
const SHARDED_ARGS: Readonly<Record<string, readonly string[]>> = {
  train_step: ["batch", "teacherLogits", "teacherTopK", "teacherFeatures"],
  train_preflight: ["batch"],
};

function rowsOf(value: unknown, where: string, found: { rows: number | null; where: string }): void {
  if (value instanceof Tensor) {
    if (value.ndim === 0)
      throw new ShardError(`${where}: a 0-d tensor has no batch dimension to split over the ranks; give it shape [batch, ...]`);
    if (found.rows === null) {
      found.rows = value.shape[0]!;
      found.where = where;
    } else if (value.shape[0] !== found.rows) {
      throw new ShardError(
        `${where}: ${value.shape[0]} rows but ${found.where} has ${found.rows}; every tensor of a batch split over ranks needs the same first (batch) dimension`,
      );
    }
    return;
  }
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) rowsOf(v, `${where}[${i}]`, found);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) rowsOf(v, `${where}.${k}`, found);
  }
}

/** Rows [start, start + count) of a tensor, as a new contiguous tensor. */
export function sliceRows(t: Tensor, start: number, count: number): Tensor {
  const rowSize = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = t.data.slice(start * rowSize, (start + count) * rowSize);
  return new Tensor(data, [count, ...t.shape.slice(1)], t.dtype);
}

function sliceValue(value: unknown, start: number, count: number): unknown {
  if (value instanceof Tensor) return sliceRows(value, start, count);
  if (Array.isArray(value)) return value.map((v) => sliceValue(v, start, count));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, sliceValue(v, start, count)]));
  }
  return value;
}

/**
 * One args object per rank: the op's batch-carrying arguments split into `ranks` equal shards (rank r gets rows
 * [r·n/ranks, (r+1)·n/ranks)), the others shared. Ops without such arguments get `args` itself for every rank.
 */
export function shardArgs(op: string, args: Record<string, unknown>, ranks: number): Record<string, unknown>[] {
  const keys = (SHARDED_ARGS[op] ?? []).filter((k) => args[k] !== undefined && args[k] !== null);
  if (ranks === 1 || keys.length === 0) return Array.from({ length: ranks }, () => args);
  const found = { rows: null as number | null, where: "" };
  for (const k of keys) rowsOf(args[k], k, found);
  const rows = found.rows;
  if (rows === null) return Array.from({ length: ranks }, () => args);
  if (rows % ranks !== 0) {
    throw new ShardError(
      `batch: ${rows} examples do not split into ${ranks} equal shards, one per rank; uneven shards would weigh examples unequally. ` +
        `Use a batch size divisible by ${ranks} (the global batch is split, each rank gets batch/${ranks}), or drop the last partial batch ` +
        "(e.g. leave it out of the data array)",
    );
  }
  const count = rows / ranks;
  return Array.from({ length: ranks }, (_, r) => {
    const out = { ...args };
    for (const k of keys) out[k] = sliceValue(args[k], r * count, count);
    return out;
  });
}

/** Tensors of the same trailing shape stacked along their first dimension, in order. */
export function concatRows(parts: Tensor[]): Tensor {
  const first = parts[0]!;
  const rows = parts.reduce((n, t) => n + t.shape[0]!, 0);
  const Ctor = first.data.constructor as new (length: number) => Tensor["data"];
  const data = new Ctor(parts.reduce((n, t) => n + t.data.length, 0));
  let offset = 0;
  for (const t of parts) {
    (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(t.data as ArrayLike<unknown>, offset);
    offset += t.data.length;
  }
  return new Tensor(data, [rows, ...first.shape.slice(1)], first.dtype);
}

/** Per-rank values of the same structure joined: tensors concatenated along rows, the rest taken from rank 0. */
export function joinRows(parts: unknown[]): unknown {
  const first = parts[0];
  if (first instanceof Tensor) return concatRows(parts as Tensor[]);
  if (Array.isArray(first)) return first.map((_, i) => joinRows(parts.map((p) => (p as unknown[])[i])));
  if (first !== null && typeof first === "object") {
    return Object.fromEntries(Object.keys(first).map((k) => [k, joinRows(parts.map((p) => (p as Record<string, unknown>)[k]))]));
  }
  return first;
}
