/** Turning a DataSource into per-epoch batch streams, with the position bookkeeping resume needs. */
import type { Batch } from "../worker/model-handle.js";
import type { DataSource } from "./options.js";

export class DataSourceError extends Error {
  override readonly name = "DataSourceError";
}

function isIterable(x: unknown): x is Iterable<Batch> {
  return x !== null && typeof x === "object" && Symbol.iterator in x;
}

function isAsyncIterable(x: unknown): x is AsyncIterable<Batch> {
  return x !== null && typeof x === "object" && Symbol.asyncIterator in x;
}

export interface EpochData {
  items: AsyncIterable<{ batch: Batch }> | Iterable<{ batch: Batch }>;
  /** Number of batches when known (arrays). */
  length: number | null;
}

async function* wrap(batches: AsyncIterable<Batch> | Iterable<Batch>): AsyncGenerator<{ batch: Batch }> {
  for await (const batch of batches as AsyncIterable<Batch>) yield { batch };
}

/** The StepFeed of a plain `data` option: one batch per micro-batch. */
export class DataFeed {
  private consumedOnce = false;

  constructor(private readonly source: DataSource) {}

  /** Arrays and functions can be replayed (epochs, resume); a bare iterable can be read once. */
  get replayable(): boolean {
    return Array.isArray(this.source) || typeof this.source === "function";
  }

  epoch(index: number): EpochData {
    const src = this.source;
    const value = typeof src === "function" ? src(index) : src;
    if (Array.isArray(value)) return { items: (value as readonly Batch[]).map((batch) => ({ batch })), length: value.length };
    if (typeof src !== "function") {
      if (this.consumedOnce) {
        throw new DataSourceError(
          "data: an iterable can be read only once; pass an array or a function (epoch) => batches to train for several epochs or to resume",
        );
      }
      this.consumedOnce = true;
    }
    if (isIterable(value) || isAsyncIterable(value)) return { items: wrap(value), length: null };
    throw new DataSourceError(`data: expected an array, an (async) iterable or a function returning one, got ${typeof value}`);
  }
}

/** Iterates sync or async batches uniformly, skipping the first `skip`. */
export async function* iterate<T>(batches: AsyncIterable<T> | Iterable<T>, skip = 0): AsyncGenerator<T> {
  let i = 0;
  if (Array.isArray(batches)) {
    for (let j = skip; j < batches.length; j++) yield batches[j] as T;
    return;
  }
  for await (const b of batches as AsyncIterable<T>) {
    if (i++ < skip) continue;
    yield b;
  }
}

/** The leading dimension of the first tensor of a batch (its number of examples). */
export function batchSize(batch: unknown): number {
  const find = (x: unknown): number | null => {
    if (x && typeof x === "object" && "shape" in x && Array.isArray((x as { shape: unknown }).shape)) {
      const shape = (x as { shape: number[] }).shape;
      return shape.length ? shape[0]! : 1;
    }
    if (Array.isArray(x)) {
      for (const v of x) {
        const n = find(v);
        if (n !== null) return n;
      }
    } else if (x && typeof x === "object") {
      for (const v of Object.values(x)) {
        const n = find(v);
        if (n !== null) return n;
      }
    }
    return null;
  };
  return find(batch) ?? 0;
}
