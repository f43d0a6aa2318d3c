/**
 * The teacher-output cache: per-example records in a memory tier (LRU, bounded) in front of an optional disk tier.
 * Reads go memory → disk (a disk hit is copied into memory); writes go to both.
 */
import { STORAGE_DTYPES, toStorageDtype, type StorageDType } from "./convert.js";
import { DiskStore, type DiskStoreOpenReport } from "./disk-store.js";
import { exampleKeys, rowView, stackRows } from "./example-key.js";
import { cacheFingerprint, checkManifest, type FingerprintParts } from "./fingerprint.js";
import { MemoryStore } from "./memory-store.js";
import { RecordFormatError, decodeRecord, encodeRecord } from "./record.js";
import type { Tensor } from "../tensor/tensor.js";

export const DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024;

export interface TeacherCacheOptions {
  /** Folder of the disk tier; memory only when absent. */
  dir?: string;
  /** Storage dtype of float tensors (default float32); must equal `fingerprintParts.dtype`. */
  dtype?: StorageDType;
  /** Budget of the memory tier in bytes (default 256 MiB; 0 disables it). */
  memoryBytes?: number;
  /** Discard a folder filled for another fingerprint instead of refusing it. */
  rebuild?: boolean;
  /** Batch tensor holding example ids; without it examples are keyed by content. */
  idKey?: string;
}

export interface TeacherCacheStats {
  hits: number;
  misses: number;
  writes: number;
  /** Records that failed a check on read (served as misses), plus damaged regions skipped at open. */
  corrupt: number;
  /** Records re-indexed by scanning the data file at open. */
  recovered: number;
}

export class TeacherCache {
  private hits = 0;
  private misses = 0;
  private writes = 0;
  private undecodable = 0;
  private closed = false;

  private constructor(
    readonly dtype: StorageDType,
    readonly fingerprint: string,
    readonly dir: string | null,
    private readonly idKey: string | undefined,
    private readonly memory: MemoryStore | null,
    private readonly disk: DiskStore | null,
  ) {}

  static async open(options: TeacherCacheOptions & { fingerprintParts: FingerprintParts }): Promise<TeacherCache> {
    const dtype = options.dtype ?? "float32";
    if (!STORAGE_DTYPES.includes(dtype)) throw new TypeError(`TeacherCache: dtype must be one of ${STORAGE_DTYPES.join(", ")}`);
    if (options.fingerprintParts.dtype !== dtype) {
      const given = options.fingerprintParts.dtype;
      throw new TypeError(`TeacherCache: fingerprintParts.dtype is ${given} but the cache stores ${dtype} (options.dtype)`);
    }
    const fingerprint = cacheFingerprint(options.fingerprintParts);
    const memoryBytes = options.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    const memory = memoryBytes === 0 ? null : new MemoryStore(memoryBytes);
    let disk: DiskStore | null = null;
    if (options.dir !== undefined) {
      await checkManifest(options.dir, fingerprint, options.fingerprintParts, { rebuild: options.rebuild ?? false });
      disk = await DiskStore.open(options.dir);
    }
    return new TeacherCache(dtype, fingerprint, options.dir ?? null, options.idKey, memory, disk);
  }

  /** How the disk index was obtained at open (null when memory only). */
  get openReport(): DiskStoreOpenReport | null {
    return this.disk?.openReport ?? null;
  }

  get stats(): TeacherCacheStats {
    const disk = this.disk?.stats;
    return {
      hits: this.hits,
      misses: this.misses,
      writes: this.writes,
      corrupt: this.undecodable + (disk?.corrupt ?? 0),
      recovered: disk?.recovered ?? 0,
    };
  }

  keys(batch: Record<string, Tensor>): string[] {
    return exampleKeys(batch, this.idKey === undefined ? {} : { idKey: this.idKey });
  }

  /** Per example: its record (tensors it owns), or null on a miss. */
  async getMany(keys: readonly string[]): Promise<(Tensor[] | null)[]> {
    const records = await Promise.all(keys.map((key) => this.lookup(key)));
    for (const r of records) {
      if (r === null) this.misses++;
      else this.hits++;
    }
    return records;
  }

  /**
   * All hit → the batch tensors (rows stacked, float tensors in the storage dtype); else null. Counts the whole
   * batch as hits or as misses, since a partial hit still needs the teacher for the batch.
   */
  async getBatch(keys: readonly string[]): Promise<Tensor[] | null> {
    const records = await Promise.all(keys.map((key) => this.lookup(key)));
    const stacked = stackRecords(records);
    if (stacked === null) this.misses += keys.length;
    else this.hits += keys.length;
    return stacked;
  }

  /** Row i of every batch tensor (converted to the storage dtype if float) becomes the record of keys[i]. */
  async putBatch(keys: readonly string[], batchTensors: readonly Tensor[]): Promise<void> {
    this.assertOpen();
    for (const t of batchTensors) {
      if (t.ndim === 0 || t.shape[0] !== keys.length) {
        throw new TypeError(`TeacherCache.putBatch: ${t} does not have a leading dim of ${keys.length} (one row per key)`);
      }
    }
    const stored = batchTensors.map((t) => toStorageDtype(t, this.dtype));
    const records: [string, Uint8Array][] = keys.map((key, i) => [key, encodeRecord(stored.map((t) => rowView(t, i)))]);
    for (const [key, bytes] of records) this.memory?.set(key, bytes);
    await this.disk?.putMany(records);
    this.writes += keys.length;
  }

  async flush(): Promise<void> {
    this.assertOpen();
    await this.disk?.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.memory?.clear();
    await this.disk?.close();
  }

  private async lookup(key: string): Promise<Tensor[] | null> {
    this.assertOpen();
    const cached = this.memory?.get(key);
    if (cached !== undefined) return this.decode(key, cached);
    if (this.disk === null) return null;
    const payload = await this.disk.get(key);
    if (payload === null) return null;
    const tensors = this.decode(key, payload);
    // slice: keep only the payload, not the frame buffer it views
    if (tensors !== null) this.memory?.set(key, payload.slice());
    return tensors;
  }

  private decode(key: string, payload: Uint8Array): Tensor[] | null {
    try {
      return decodeRecord(payload);
    } catch (err) {
      if (!(err instanceof RecordFormatError)) throw err;
      this.undecodable++;
      this.memory?.delete(key);
      return null;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("TeacherCache is closed");
  }
}

/** Stacks tensor j of every record; null if a record is missing or the records don't line up. */
function stackRecords(records: readonly (Tensor[] | null)[]): Tensor[] | null {
  const first = records[0];
  if (first === undefined || first === null) return null;
  if (records.some((r) => r === null || r.length !== first.length)) return null;
  try {
    return first.map((_, j) => stackRows(records.map((r) => r![j]!)));
  } catch (err) {
    if (err instanceof TypeError) return null;
    throw err;
  }
}
