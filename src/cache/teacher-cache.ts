/**
 * The teacher-output cache: per-example records in a memory tier (LRU, bounded) in front of an optional disk tier.
 * Reads go memory → disk (a disk hit is copied into memory); writes go to both.
 */

import type { Tensor } from "../tensor/tensor.js";
import { STORAGE_DTYPES, type StorageDType, toStorageDtype } from "./convert.js";
import { DiskStore, type DiskStoreOpenReport, removeDiskStoreFiles } from "./disk-store.js";
import { CACHE_WRITE_ERROR_POLICIES, CacheMismatchError, CacheWriteError, type CacheWriteErrorPolicy } from "./errors.js";
import { exampleKeys, rowView, stackRows } from "./example-key.js";
import { cacheFingerprint, checkManifest, type FingerprintParts } from "./fingerprint.js";
import { MemoryStore } from "./memory-store.js";
import { decodeRecord, encodeRecord, RecordFormatError } from "./record.js";

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
  /**
   * When the disk tier cannot be written (a full disk): "raise" (default) throws CacheWriteError naming the folder
   * and the cause; "continue" warns once and goes on without writing the disk tier (what it holds is still read,
   * the memory tier still serves).
   */
  onWriteError?: CacheWriteErrorPolicy;
}

export interface TeacherCacheStats {
  hits: number;
  misses: number;
  writes: number;
  /** Records that failed a check on read (served as misses), plus damaged regions skipped at open. */
  corrupt: number;
  /** Records re-indexed by scanning the data file at open. */
  recovered: number;
  /** Records not written to the disk tier because a write failed (onWriteError: "continue"). */
  unwritten: number;
}

export class TeacherCache {
  private hits = 0;
  private misses = 0;
  private writes = 0;
  private undecodable = 0;
  private unwritten = 0;
  private closed = false;
  /** The write error that stopped disk writes (onWriteError: "continue"); null while they go on. */
  private writeError: CacheWriteError | null;

  private constructor(
    readonly dtype: StorageDType,
    readonly fingerprint: string,
    readonly dir: string | null,
    private readonly idKey: string | undefined,
    private readonly memory: MemoryStore | null,
    private readonly disk: DiskStore | null,
    private readonly onWriteError: CacheWriteErrorPolicy,
    openError: CacheWriteError | null,
  ) {
    this.writeError = openError;
  }

  static async open(options: TeacherCacheOptions & { fingerprintParts: FingerprintParts }): Promise<TeacherCache> {
    const dtype = options.dtype ?? "float32";
    if (!STORAGE_DTYPES.includes(dtype)) throw new TypeError(`TeacherCache: dtype must be one of ${STORAGE_DTYPES.join(", ")}`);
    if (options.fingerprintParts.dtype !== dtype) {
      const given = options.fingerprintParts.dtype;
      throw new TypeError(`TeacherCache: fingerprintParts.dtype is ${given} but the cache stores ${dtype} (options.dtype)`);
    }
    const onWriteError = options.onWriteError ?? "raise";
    if (!CACHE_WRITE_ERROR_POLICIES.includes(onWriteError)) {
      const allowed = CACHE_WRITE_ERROR_POLICIES.map((p) => `"${p}"`).join(" or ");
      throw new TypeError(`TeacherCache: onWriteError must be ${allowed}, got ${JSON.stringify(onWriteError)}`);
    }
    const fingerprint = cacheFingerprint(options.fingerprintParts);
    const memoryBytes = options.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    const memory = memoryBytes === 0 ? null : new MemoryStore(memoryBytes);
    let disk: DiskStore | null = null;
    let openError: CacheWriteError | null = null;
    if (options.dir !== undefined) {
      try {
        disk = await openDisk(options.dir, fingerprint, options.fingerprintParts, options.rebuild ?? false);
      } catch (err) {
        if (!(err instanceof CacheWriteError) || onWriteError === "raise") throw err;
        warnUncached(err);
        openError = err;
      }
    }
    return new TeacherCache(dtype, fingerprint, options.dir ?? null, options.idKey, memory, disk, onWriteError, openError);
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
      unwritten: this.unwritten,
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

  /**
   * Row i of every batch tensor (converted to the storage dtype if float) becomes the record of keys[i]. Tensors of
   * `stored` are already in their storage form (teacher features); they come first in the record, as they are.
   */
  async putBatch(keys: readonly string[], batchTensors: readonly Tensor[], stored: readonly Tensor[] = []): Promise<void> {
    this.assertOpen();
    for (const t of [...stored, ...batchTensors]) {
      if (t.ndim === 0 || t.shape[0] !== keys.length) {
        throw new TypeError(`TeacherCache.putBatch: ${t} does not have a leading dim of ${keys.length} (one row per key)`);
      }
    }
    const tensors = [...stored, ...batchTensors.map((t) => toStorageDtype(t, this.dtype))];
    const records: [string, Uint8Array][] = keys.map((key, i) => [key, encodeRecord(tensors.map((t) => rowView(t, i)))]);
    for (const [key, bytes] of records) this.memory?.set(key, bytes);
    if (this.disk !== null && this.writeError === null) await this.writing(() => this.disk!.putMany(records));
    if (this.dir !== null && this.writeError !== null) this.unwritten += keys.length;
    this.writes += keys.length;
  }

  async flush(): Promise<void> {
    this.assertOpen();
    if (this.disk !== null && this.writeError === null) await this.writing(() => this.disk!.flush());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.memory?.clear();
    if (this.disk === null) return;
    if (this.writeError === null) await this.writing(() => this.disk!.close());
    else await this.disk.close().catch(() => undefined); // already warned; the index is rebuilt from records.bin on open
  }

  /** Runs a disk write; under onWriteError "continue" a CacheWriteError stops disk writes with one warning. */
  private async writing(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (err) {
      if (!(err instanceof CacheWriteError) || this.onWriteError === "raise") throw err;
      if (this.writeError === null) warnUncached(err);
      this.writeError = err;
    }
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

/**
 * Checks the manifest, then opens the disk tier bound to the fingerprint. A records.bin of another cache (copied in)
 * is refused with CacheMismatchError, or with `rebuild` discarded like a folder filled for other settings.
 */
async function openDisk(dir: string, fingerprint: string, parts: FingerprintParts, rebuild: boolean): Promise<DiskStore> {
  await checkManifest(dir, fingerprint, parts, { rebuild });
  try {
    return await DiskStore.open(dir, { binding: fingerprint });
  } catch (err) {
    if (!(err instanceof CacheMismatchError) || !rebuild) throw err;
    await removeDiskStoreFiles(dir);
    return await DiskStore.open(dir, { binding: fingerprint });
  }
}

function warnUncached(err: CacheWriteError): void {
  console.warn(
    `textbrewer-ts: teacher cache ${err.dir}: cannot write ${err.file}: ${err.reason}; carrying on without writing the cache ` +
      '(onWriteError: "continue"); the records already there are still read',
  );
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
