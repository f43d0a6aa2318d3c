/**
 * In-memory tier: encoded records under a byte budget, least recently used evicted first.
 *
 * An evicted entry is dropped. TeacherCache writes every record to the disk tier as well, so with a disk store
 * under it nothing is lost; memory-only, an evicted example is simply recomputed.
 */

export interface MemoryStoreStats {
  entries: number;
  bytes: number;
  evictions: number;
}

export class MemoryStore {
  // A Map iterates in insertion order: re-inserting on access keeps the least recently used entry first.
  private readonly entries = new Map<string, Uint8Array>();
  private usedBytes = 0;
  private evictions = 0;

  /** `maxBytes` bounds the values' bytes plus two bytes per key character (keys are UTF-16 strings). */
  constructor(readonly maxBytes: number) {
    if (!(maxBytes >= 0)) throw new RangeError(`MemoryStore: maxBytes must be >= 0, got ${maxBytes}`);
  }

  get(key: string): Uint8Array | undefined {
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Stores `value` (kept by reference, not copied). A value larger than the whole budget is not stored. */
  set(key: string, value: Uint8Array): boolean {
    this.delete(key);
    const cost = entryCost(key, value);
    if (cost > this.maxBytes) return false;
    this.entries.set(key, value);
    this.usedBytes += cost;
    for (const [oldKey, oldValue] of this.entries) {
      if (this.usedBytes <= this.maxBytes) break;
      this.entries.delete(oldKey);
      this.usedBytes -= entryCost(oldKey, oldValue);
      this.evictions++;
    }
    return true;
  }

  delete(key: string): boolean {
    const value = this.entries.get(key);
    if (value === undefined) return false;
    this.entries.delete(key);
    this.usedBytes -= entryCost(key, value);
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.usedBytes = 0;
  }

  /** Keys from least to most recently used. */
  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  get stats(): MemoryStoreStats {
    return { entries: this.entries.size, bytes: this.usedBytes, evictions: this.evictions };
  }
}

function entryCost(key: string, value: Uint8Array): number {
  return value.byteLength + 2 * key.length;
}
