/**
 * The teacher cache on a full disk: a real one (a small tmpfs, mounted when the tests run as root), else ENOSPC
 * injected at FileHandle.write/writev (see helpers/small-disk.ts).
 */
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { CacheWriteError, type FingerprintParts, TeacherCache } from "../src/cache/index.js";
import { Tensor } from "../src/tensor/tensor.js";
import { tempDir } from "./helpers/fixtures.js";
import { limitFileWrites, mountSmallDisk } from "./helpers/small-disk.js";

const DISK_BYTES = 64 * 1024;
const parts: FingerprintParts = { teacherWeights: "sha256:aaaa", adaptor: null, dtype: "float32", topK: null };
/** 4 examples of 1,000 float32 logits: ~16 KB a batch, so a 64 KiB disk fills on the third or fourth. */
const keysOf = (b: number): string[] => [0, 1, 2, 3].map((i) => `e${4 * b + i}`);
const rowsOf = (b: number): Tensor => Tensor.from(keysOf(b).map((_, i) => Array.from({ length: 1000 }, (_, j) => 4 * b + i + j / 1000)));

let tmp: ReturnType<typeof tempDir>;
let mounted = 0;
let fallback = false;
const releases: (() => void)[] = [];

/** A fresh folder on a disk of DISK_BYTES, or on a disk already full. */
async function smallDisk(full = false): Promise<string> {
  const name = `disk${mounted++}`;
  const disk = mountSmallDisk(tmp.path, name, DISK_BYTES);
  if (disk !== null) {
    releases.push(disk.release);
    if (full) expect(() => writeFileSync(join(disk.path, "filler"), new Uint8Array(DISK_BYTES + 4096))).toThrow(/ENOSPC/);
    return disk.path;
  }
  fallback = true;
  mkdirSync(join(tmp.path, name));
  releases.push(await limitFileWrites(tmp.path, full ? 0 : DISK_BYTES));
  return join(tmp.path, name);
}

/** Fills the cache batch by batch until a write fails; the batches written, and the error. */
async function fillUntilFull(cache: TeacherCache): Promise<{ batches: number; error: unknown }> {
  for (let b = 0; b < 50; b++) {
    try {
      await cache.putBatch(keysOf(b), [rowsOf(b)]);
      await cache.flush();
    } catch (error) {
      return { batches: b, error };
    }
  }
  return { batches: 50, error: null };
}

/** How many of batches [0, n) the cache serves, each row checked against what was written. */
async function served(cache: TeacherCache, n: number): Promise<number> {
  let count = 0;
  for (let b = 0; b < n; b++) {
    const got = await cache.getBatch(keysOf(b));
    if (got === null) continue;
    expect(got[0]!.toArray()).toEqual(rowsOf(b).toArray());
    count++;
  }
  return count;
}

const leftovers = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith(".tmp"));

beforeAll(() => {
  tmp = tempDir("tbts-cache-full-");
  vi.spyOn(console, "warn").mockImplementation(() => undefined);
});
afterEach(() => {
  vi.mocked(console.warn).mockClear();
  while (releases.length) releases.pop()!();
});
afterAll(() => {
  vi.mocked(console.warn).mockRestore();
  tmp.cleanup();
  if (fallback) console.log("cache-full-disk: no tmpfs could be mounted; ENOSPC was injected at FileHandle writes");
});

describe("teacher cache on a full disk", () => {
  it("raises CacheWriteError naming the folder and the cause, leaves no temporary file, keeps what was written readable", async () => {
    const dir = join(await smallDisk(), "cache");
    const cache = await TeacherCache.open({ dir, memoryBytes: 0, fingerprintParts: parts });
    const { batches, error } = await fillUntilFull(cache);
    expect(batches).toBeGreaterThan(0);
    expect(error).toBeInstanceOf(CacheWriteError);
    const e = error as CacheWriteError;
    expect(e.message).toContain(`Teacher cache ${dir}: cannot write `);
    expect(e.message).toContain("no space left on device (ENOSPC)");
    expect(e.message).toContain('onWriteError: "continue"');
    expect(e).toMatchObject({ dir, code: "ENOSPC" });
    expect(leftovers(dir)).toEqual([]);
    expect(await served(cache, batches)).toBe(batches);
    await cache.close().catch((err: unknown) => expect(err).toBeInstanceOf(CacheWriteError)); // the index may not fit either
    expect(leftovers(dir)).toEqual([]);
    // reopened on the still full disk: every batch written before the failure, nothing after it
    const again = await TeacherCache.open({ dir, memoryBytes: 0, fingerprintParts: parts });
    expect(await served(again, batches + 1)).toBe(batches);
    await again.close().catch((err: unknown) => expect(err).toBeInstanceOf(CacheWriteError));
    expect(leftovers(dir)).toEqual([]);
    expect(console.warn).not.toHaveBeenCalled();
  });

  it('with onWriteError: "continue" carries on uncached after exactly one warning', async () => {
    const dir = join(await smallDisk(), "cache");
    const cache = await TeacherCache.open({ dir, memoryBytes: 0, fingerprintParts: parts, onWriteError: "continue" });
    const { batches, error } = await fillUntilFull(cache);
    expect(error).toBeNull();
    expect(batches).toBe(50);
    expect(console.warn).toHaveBeenCalledTimes(1);
    const warning = String(vi.mocked(console.warn).mock.calls[0]![0]);
    expect(warning).toContain(`teacher cache ${dir}: cannot write `);
    expect(warning).toContain("no space left on device (ENOSPC); carrying on without writing the cache");
    const written = await served(cache, 50);
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(50);
    expect(cache.stats.unwritten).toBe(4 * (50 - written));
    await cache.close();
    expect(leftovers(dir)).toEqual([]);
    const again = await TeacherCache.open({ dir, memoryBytes: 0, fingerprintParts: parts, onWriteError: "continue" });
    expect(await served(again, 50)).toBe(written);
    await again.close();
    expect(leftovers(dir)).toEqual([]);
    expect(console.warn).toHaveBeenCalledTimes(1);
  });

  it("a new cache folder on a full disk: CacheWriteError for manifest.json, or memory only with one warning", async () => {
    const dir = join(await smallDisk(true), "cache");
    const err = await TeacherCache.open({ dir, fingerprintParts: parts }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheWriteError);
    expect((err as Error).message).toMatch(
      new RegExp(`^Teacher cache ${dir}: cannot write (manifest\\.json|records\\.bin): no space left`),
    );
    expect(leftovers(dir)).toEqual([]);
    const cache = await TeacherCache.open({ dir, fingerprintParts: parts, onWriteError: "continue" });
    expect(console.warn).toHaveBeenCalledTimes(1);
    await cache.putBatch(keysOf(0), [rowsOf(0)]);
    expect(await served(cache, 1)).toBe(1); // from the memory tier
    expect(cache.stats.unwritten).toBe(4);
    await cache.close();
    expect(leftovers(dir)).toEqual([]);
  });

  it("rejects an unknown onWriteError", async () => {
    const open = TeacherCache.open({ fingerprintParts: parts, onWriteError: "ignore" as never });
    await expect(open).rejects.toThrow('TeacherCache: onWriteError must be "raise" or "continue", got "ignore"');
  });
});
