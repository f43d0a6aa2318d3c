import { copyFile, mkdtemp, readFile, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CacheMismatchError,
  cacheFingerprint,
  checkManifest,
  DATA_FILE,
  DiskStore,
  decodeRecord,
  encodeRecord,
  exampleKeys,
  type FingerprintParts,
  INDEX_FILE,
  MANIFEST_FILE,
  MemoryStore,
  RecordFormatError,
  sliceRow,
  stackRows,
  TeacherCache,
  toFloat32,
  toStorageDtype,
} from "../src/cache/index.js";
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from "../src/tensor/half.js";
import { type DType, Tensor } from "../src/tensor/tensor.js";
import { DTYPES } from "../src/worker/protocol.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tb-cache-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const flip = (buf: Uint8Array, at: number, mask: number): void => {
  buf[at] = buf[at]! ^ mask;
};
const payloadOf = (i: number, n = 40): Uint8Array => Uint8Array.from({ length: n }, (_, j) => (i * 31 + j) & 0xff);
/** records.bin's header (magic, version, binding length, CRC) before the first frame, without a binding... */
const HEADER = 12;
/** ...and with a teacher cache's fingerprint (64 hex digits) as the binding */
const BOUND_HEADER = HEADER + 64;

function sample(dtype: DType, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const fraction = dtype.includes("float") ? 0.5 : 0;
  return Tensor.from(
    Array.from({ length: n }, (_, i) => (i % 7) - 3 + fraction),
    dtype,
  ).reshape(shape);
}

const parts = (over: Partial<FingerprintParts> = {}): FingerprintParts => ({
  teacherWeights: "sha256:aaaa",
  adaptor: { kind: "select", keys: { logits: { from: "out", path: ["logits"] } } },
  dtype: "float16",
  topK: null,
  ...over,
});

describe("record encoding", () => {
  it("round-trips every dtype, 0-d and empty tensors, and owns its memory", () => {
    const tensors = DTYPES.map((dtype, i) => sample(dtype, [2, i + 1]));
    tensors.push(sample("float32", []), sample("int64", [0, 3]));
    const payload = encodeRecord(tensors);
    const back = decodeRecord(payload);
    expect(back).toHaveLength(tensors.length);
    back.forEach((t, i) => {
      expect(t.dtype).toBe(tensors[i]!.dtype);
      expect(t.shape).toEqual(tensors[i]!.shape);
      expect(Array.from(t.bytes())).toEqual(Array.from(tensors[i]!.bytes()));
      expect(t.data.buffer).not.toBe(payload.buffer);
    });
    expect(decodeRecord(encodeRecord([]))).toEqual([]);
  });

  it("rejects malformed payloads with RecordFormatError", () => {
    const payload = encodeRecord([sample("float32", [3])]);
    expect(() => decodeRecord(payload.subarray(0, payload.length - 1))).toThrow(RecordFormatError);
    expect(() => decodeRecord(bytes(9, 0, 0, 0))).toThrow(/version/);
    const badCode = payload.slice();
    badCode[4] = 200;
    expect(() => decodeRecord(badCode)).toThrow(/dtype code/);
  });
});

describe("storage dtype conversion", () => {
  const formats = [
    { dtype: "float16" as const, precision: 11, minExponent: -14, maxExponent: 15, decode: float16BitsToFloat32 },
    { dtype: "bfloat16" as const, precision: 8, minExponent: -126, maxExponent: 127, decode: bfloat16BitsToFloat32 },
  ];

  function exponentOf(x: number): number {
    let e = Math.floor(Math.log2(Math.abs(x)));
    if (2 ** e > Math.abs(x)) e--;
    if (2 ** (e + 1) <= Math.abs(x)) e++;
    return e;
  }

  function randomValues(maxExponent: number, minExponent: number, count: number): number[] {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    return Array.from({ length: count }, () => {
      const e = Math.floor(minExponent - 12 + rand() * (maxExponent - minExponent + 12));
      return (rand() < 0.5 ? -1 : 1) * (1 + rand()) * 2 ** e;
    });
  }

  for (const f of formats) {
    it(`${f.dtype}: within half an ulp, ties to even, from float32 and float64`, () => {
      const values = randomValues(f.maxExponent, f.minExponent, 20000);
      for (const source of ["float32", "float64"] as const) {
        const src = Tensor.fromTypedArray(source === "float32" ? Float32Array.from(values) : Float64Array.from(values));
        const out = toStorageDtype(src, f.dtype);
        expect(out.dtype).toBe(f.dtype);
        for (let i = 0; i < src.size; i++) {
          const x = Number(src.data[i]);
          const bits = out.data[i] as number;
          const y = f.decode(bits);
          // float64 reference of the rounding bound: half the format's spacing at x
          const halfUlp = 2 ** (Math.max(exponentOf(x), f.minExponent) - f.precision + 1) / 2;
          const err = Math.abs(y - x);
          if (!(err <= halfUlp)) throw new Error(`${source} ${x} → ${y}: error ${err} > ${halfUlp}`);
          if (err === halfUlp && (bits & 1) !== 0) throw new Error(`${source} ${x} → ${y}: tie not rounded to even`);
        }
      }
    });
  }

  it("rounds float64 once (no double rounding through float32)", () => {
    // Just above a float16 tie; via float32 it would become the tie itself and round down to 1.
    const x = 1 + 2 ** -11 + 2 ** -40;
    expect(toStorageDtype(Tensor.fromTypedArray(Float64Array.of(x)), "float16").data[0]).toBe(0x3c01);
    expect(toStorageDtype(Tensor.fromTypedArray(Float64Array.of(1 + 2 ** -11)), "float16").data[0]).toBe(0x3c00);
    const y = 1 + 2 ** -8 + 2 ** -40;
    expect(toStorageDtype(Tensor.fromTypedArray(Float64Array.of(y)), "bfloat16").data[0]).toBe(0x3f81);
  });

  it("keeps specials and overflows to infinity", () => {
    const src = Tensor.fromTypedArray(Float64Array.of(NaN, Infinity, -Infinity, -0, 1e6, 65520, 65519));
    const h = toFloat32(toStorageDtype(src, "float16")).toFlatArray();
    expect(Number.isNaN(h[0])).toBe(true);
    expect(h.slice(1, 4)).toEqual([Infinity, -Infinity, -0]);
    expect(h.slice(4)).toEqual([Infinity, Infinity, 65504]);
  });

  it("leaves integer tensors untouched and converts between float dtypes", () => {
    const ids = Tensor.from([1n, 2n]);
    expect(toStorageDtype(ids, "float16")).toBe(ids);
    expect(toFloat32(ids)).toBe(ids);
    const f = Tensor.from([0.5, -3.25, 1024]);
    expect(toStorageDtype(f, "float32")).toBe(f);
    expect(toFloat32(toStorageDtype(f, "bfloat16")).toFlatArray()).toEqual([0.5, -3.25, 1024]);
    expect(toFloat32(toStorageDtype(toStorageDtype(f, "float16"), "bfloat16")).toFlatArray()).toEqual([0.5, -3.25, 1024]);
  });
});

describe("MemoryStore", () => {
  it("evicts least recently used entries beyond its budget", () => {
    const m = new MemoryStore(3 * (10 + 2));
    m.set("a", new Uint8Array(10));
    m.set("b", new Uint8Array(10));
    m.set("c", new Uint8Array(10));
    m.get("a");
    m.set("d", new Uint8Array(10));
    expect([...m.keys()]).toEqual(["c", "a", "d"]);
    expect(m.stats).toEqual({ entries: 3, bytes: 36, evictions: 1 });
    expect(m.set("huge", new Uint8Array(100))).toBe(false);
    expect(m.has("huge")).toBe(false);
  });
});

describe("DiskStore", () => {
  async function filled(n: number): Promise<void> {
    const store = await DiskStore.open(dir);
    await store.putMany(Array.from({ length: n }, (_, i) => [`k${i}`, payloadOf(i)] as const));
    await store.close();
  }

  it("survives reopen and keeps the newest value of a key", async () => {
    const store = await DiskStore.open(dir);
    await store.put("a", bytes(1, 2, 3));
    await store.putMany([
      ["b", bytes(4)],
      ["a", bytes(5, 6)],
    ]);
    expect(await store.get("a")).toEqual(bytes(5, 6));
    await store.close();
    const again = await DiskStore.open(dir);
    expect(again.openReport.index).toBe("loaded");
    expect(await again.get("a")).toEqual(bytes(5, 6));
    expect(await again.get("b")).toEqual(bytes(4));
    expect(await again.get("c")).toBeNull();
    await again.close();
  });

  it("cuts a record torn in the middle back to the last good one", async () => {
    await filled(5);
    const size = (await stat(join(dir, DATA_FILE))).size;
    await truncate(join(dir, DATA_FILE), size - 20);
    const store = await DiskStore.open(dir);
    expect(store.openReport.index).toBe("rebuilt");
    const frame = 16 + 2 + 40;
    expect(store.openReport.truncatedBytes).toBe(frame - 20);
    expect((await stat(join(dir, DATA_FILE))).size).toBe(HEADER + 4 * frame);
    for (let i = 0; i < 4; i++) expect(await store.get(`k${i}`)).toEqual(payloadOf(i));
    expect(await store.get("k4")).toBeNull();
    await store.put("k4", payloadOf(44));
    await store.put("k5", payloadOf(5));
    await store.close();
    const again = await DiskStore.open(dir);
    expect(again.openReport.index).toBe("loaded");
    expect(await again.get("k4")).toEqual(payloadOf(44));
    expect(await again.get("k5")).toEqual(payloadOf(5));
    expect(await again.get("k3")).toEqual(payloadOf(3));
    await again.close();
  });

  it("scans only the tail when records were appended after the last index write", async () => {
    const store = await DiskStore.open(dir);
    await store.putMany([
      ["a", bytes(1)],
      ["b", bytes(2)],
    ]);
    await store.flush();
    await copyFile(join(dir, INDEX_FILE), join(dir, "old-index"));
    await store.putMany([
      ["c", bytes(3)],
      ["d", payloadOf(4)],
    ]);
    await store.close();
    // as if the run stopped before flushing, in the middle of writing "d"
    await copyFile(join(dir, "old-index"), join(dir, INDEX_FILE));
    await truncate(join(dir, DATA_FILE), (await stat(join(dir, DATA_FILE))).size - 5);
    const again = await DiskStore.open(dir);
    expect(again.openReport).toMatchObject({ index: "tail-scanned", scannedRecords: 1 });
    expect(again.stats.recovered).toBe(1);
    expect(await again.get("a")).toEqual(bytes(1));
    expect(await again.get("c")).toEqual(bytes(3));
    expect(await again.get("d")).toBeNull();
    await again.close();
  });

  it("serves a record whose payload byte flipped as a miss, counted as corrupt", async () => {
    await filled(3);
    const data = await readFile(join(dir, DATA_FILE));
    const frame = (data.length - HEADER) / 3;
    flip(data, HEADER + 2 * frame - 10, 0x40); // inside k1's payload
    await writeFile(join(dir, DATA_FILE), data);
    const store = await DiskStore.open(dir);
    expect(store.openReport.index).toBe("loaded");
    expect(await store.get("k1")).toBeNull();
    expect(await store.get("k1")).toBeNull();
    expect(store.stats.corrupt).toBe(1);
    expect(await store.get("k0")).toEqual(payloadOf(0));
    expect(await store.get("k2")).toEqual(payloadOf(2));
    await store.close();
    // the dropped key stays out of the rewritten index, so it is recomputed rather than re-read
    const reopened = await DiskStore.open(dir);
    expect(reopened.openReport.index).toBe("loaded");
    expect([...reopened.keys()].sort()).toEqual(["k0", "k2"]);
    await reopened.close();
    // without an index, the scan skips the damaged frame and keeps the ones after it
    await unlink(join(dir, INDEX_FILE));
    const scanned = await DiskStore.open(dir);
    expect(scanned.openReport).toMatchObject({ index: "rebuilt", scannedRecords: 2, truncatedBytes: 0 });
    expect(scanned.openReport.skippedBytes).toBe(frame);
    expect(await scanned.get("k1")).toBeNull();
    expect(await scanned.get("k2")).toEqual(payloadOf(2));
    await scanned.close();
  });

  it("rebuilds a missing or corrupt index by scanning", async () => {
    await filled(10);
    await unlink(join(dir, INDEX_FILE));
    let store = await DiskStore.open(dir);
    expect(store.openReport).toMatchObject({ index: "rebuilt", reason: "index.bin is missing", scannedRecords: 10 });
    await store.close();
    const index = await readFile(join(dir, INDEX_FILE));
    flip(index, 30, 1);
    await writeFile(join(dir, INDEX_FILE), index);
    store = await DiskStore.open(dir);
    expect(store.openReport).toMatchObject({ index: "rebuilt", reason: "index.bin is corrupt" });
    for (let i = 0; i < 10; i++) expect(await store.get(`k${i}`)).toEqual(payloadOf(i));
    await store.close();
    await writeFile(join(dir, INDEX_FILE), "not an index");
    store = await DiskStore.open(dir);
    expect(store.openReport.index).toBe("rebuilt");
    expect(await store.get("k9")).toEqual(payloadOf(9));
    await store.close();
  });

  it("rebuilds an index that belongs to another records.bin of the same length", async () => {
    await filled(3);
    await copyFile(join(dir, INDEX_FILE), join(dir, "other-index"));
    await rm(join(dir, DATA_FILE));
    const store = await DiskStore.open(dir);
    await store.putMany([0, 1, 2].map((i) => [`k${i}`, payloadOf(i + 10)] as const));
    await store.close();
    await copyFile(join(dir, "other-index"), join(dir, INDEX_FILE));
    const again = await DiskStore.open(dir);
    expect(again.openReport).toMatchObject({ index: "rebuilt", reason: "index.bin does not belong to this records.bin" });
    expect(await again.get("k2")).toEqual(payloadOf(12));
    await again.close();
  });

  it("reopens 20k records without reading records.bin whole, and scans it in bounded chunks", async () => {
    const n = 20_000;
    const store = await DiskStore.open(dir);
    for (let b = 0; b < n; b += 1000) {
      await store.putMany(Array.from({ length: 1000 }, (_, i) => [`k${b + i}`, payloadOf(b + i, 200)] as const));
    }
    await store.close();
    const dataSize = (await stat(join(dir, DATA_FILE))).size;
    expect(dataSize).toBeGreaterThan(4 * 1024 * 1024);

    const again = await DiskStore.open(dir);
    expect(again.openReport.index).toBe("loaded");
    expect(again.size).toBe(n);
    // only the header and the CRC field that ties index.bin to records.bin
    expect(again.io.bytesRead).toBeLessThanOrEqual(HEADER + 4);
    for (const i of [0, 1, 9999, 12345, n - 1]) expect(await again.get(`k${i}`)).toEqual(payloadOf(i, 200));
    expect(again.io.largestRead).toBeLessThan(300);
    await again.close();

    await unlink(join(dir, INDEX_FILE));
    const rebuilt = await DiskStore.open(dir);
    expect(rebuilt.openReport).toMatchObject({ index: "rebuilt", scannedRecords: n });
    expect(rebuilt.io.largestRead).toBeLessThanOrEqual(1 << 20);
    expect(await rebuilt.get(`k${n - 2}`)).toEqual(payloadOf(n - 2, 200));
    await rebuilt.close();
  });
});

describe("fingerprint and manifest", () => {
  it("hashes canonical JSON, independent of key order", () => {
    const a = cacheFingerprint(parts({ adaptor: { x: 1, y: [1, { b: 2, a: 1 }] } }));
    const adaptor = { y: [1, { a: 1, b: 2 }], x: 1 };
    const b = cacheFingerprint({ topK: null, dtype: "float16", adaptor, teacherWeights: "sha256:aaaa" });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).toBe(b);
    expect(cacheFingerprint(parts({ temperature: null }))).toBe(cacheFingerprint(parts()));
    expect(cacheFingerprint(parts({ topK: 20 }))).not.toBe(cacheFingerprint(parts()));
  });

  it("refuses a folder filled for other settings, naming what changed, and rebuilds on request", async () => {
    const old = parts();
    expect(await checkManifest(dir, cacheFingerprint(old), old)).toBe("created");
    expect(await checkManifest(dir, cacheFingerprint(old), old)).toBe("ok");
    const store = await DiskStore.open(dir);
    await store.put("k", bytes(1));
    await store.close();

    const next = parts({ teacherWeights: "sha256:bbbb", dtype: "bfloat16", adaptor: { kind: "python", ref: "a.py:f" } });
    const err = await checkManifest(dir, cacheFingerprint(next), next).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheMismatchError);
    const message = (err as Error).message;
    expect(message).toContain("teacher weights changed");
    expect(message).toContain("adaptor changed");
    expect(message).toContain("dtype float16 → bfloat16");
    expect(message).toContain("rebuild: true");
    expect(message).not.toContain("top-k");

    expect(await checkManifest(dir, cacheFingerprint(next), next, { rebuild: true })).toBe("rebuilt");
    type Manifest = { fingerprint: string; parts: { dtype: string } };
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), "utf8")) as Manifest;
    expect(manifest.fingerprint).toBe(cacheFingerprint(next));
    expect(manifest.parts.dtype).toBe("bfloat16");
    const reopened = await DiskStore.open(dir);
    expect(reopened.size).toBe(0);
    await reopened.close();
  });

  it("refuses records that have no manifest", async () => {
    const store = await DiskStore.open(dir);
    await store.put("k", bytes(1));
    await store.close();
    const p = parts();
    await expect(checkManifest(dir, cacheFingerprint(p), p)).rejects.toThrow(/no manifest\.json/);
  });

  it("TeacherCache.open applies the manifest check", async () => {
    const cache = await TeacherCache.open({ dir, dtype: "float16", fingerprintParts: parts() });
    await cache.putBatch(["x"], [Tensor.from([[1, 2]])]);
    await cache.close();
    const other = parts({ topK: 32 });
    const refused = TeacherCache.open({ dir, dtype: "float16", fingerprintParts: other });
    await expect(refused).rejects.toThrow(/top-k off \(dense\) → 32/);
    const rebuilt = await TeacherCache.open({ dir, dtype: "float16", fingerprintParts: other, rebuild: true });
    expect(await rebuilt.getMany(["x"])).toEqual([null]);
    await rebuilt.close();
  });
});

describe("records bound to their teacher", () => {
  const teacherA = parts({ teacherWeights: "sha256:aaaa", dtype: "float32" });
  const teacherB = parts({ teacherWeights: "sha256:bbbb", dtype: "float32" });
  const keys = ["e0", "e1", "e2", "e3", "e4", "e5"];
  /** Teacher A's row for example i is [i, i, i]; teacher B's is [100 + i, ...]: a served A row is a wrong logit. */
  const rowsOf = (offset: number): Tensor => Tensor.from(keys.map((_, i) => [0, 0, 0].map(() => offset + i)));

  async function filled(cacheDir: string, fingerprintParts: FingerprintParts, offset: number): Promise<void> {
    const cache = await TeacherCache.open({ dir: cacheDir, dtype: "float32", fingerprintParts });
    await cache.putBatch(keys, [rowsOf(offset)]);
    await cache.close();
  }

  /** The rows B's cache serves that are not B's own (a miss is fine: it is recomputed). */
  async function wrongRowsServed(cacheDir: string, options: { rebuild?: boolean } = {}): Promise<number> {
    const cache = await TeacherCache.open({ dir: cacheDir, memoryBytes: 0, dtype: "float32", fingerprintParts: teacherB, ...options });
    const got = await cache.getMany(keys);
    await cache.close();
    return got.filter((r, i) => r !== null && r[0]!.toFlatArray()[0] !== 100 + i).length;
  }

  it("refuses records.bin copied in from another teacher's cache folder, naming the folder; rebuild recomputes", async () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await filled(a, teacherA, 0);
    await filled(b, teacherB, 100);
    expect(await wrongRowsServed(b)).toBe(0);
    for (const files of [[DATA_FILE, INDEX_FILE], [DATA_FILE]]) {
      for (const f of files) await copyFile(join(a, f), join(b, f));
      const err = await wrongRowsServed(b).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CacheMismatchError);
      expect((err as Error).message).toContain(`Teacher cache ${b} `);
      expect((err as Error).message).toMatch(
        /records\.bin holds the records of another cache \(fingerprint [0-9a-f]{16}…; this folder's is/,
      );
      expect((err as Error).message).toContain("rebuild: true");
    }
    expect(await wrongRowsServed(b, { rebuild: true })).toBe(0);
    const rebuilt = await TeacherCache.open({ dir: b, dtype: "float32", fingerprintParts: teacherB });
    expect(await rebuilt.getMany(keys)).toEqual(keys.map(() => null));
    await rebuilt.close();
  });

  it("a frame spliced in from another teacher's records.bin fails its check: a miss, never its logits", async () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await filled(a, teacherA, 0);
    await filled(b, teacherB, 100);
    const dataA = await readFile(join(a, DATA_FILE));
    const dataB = await readFile(join(b, DATA_FILE));
    expect(dataA.length).toBe(dataB.length); // same keys, same shapes: frames at the same offsets
    const frame = (dataB.length - BOUND_HEADER) / keys.length;
    // e2's frame replaced by teacher A's: index.bin still points at it
    const spliced = Buffer.concat([
      dataB.subarray(0, BOUND_HEADER + 2 * frame),
      dataA.subarray(BOUND_HEADER + 2 * frame, BOUND_HEADER + 3 * frame),
      dataB.subarray(BOUND_HEADER + 3 * frame),
    ]);
    await writeFile(join(b, DATA_FILE), spliced);
    const cache = await TeacherCache.open({ dir: b, memoryBytes: 0, dtype: "float32", fingerprintParts: teacherB });
    expect(cache.openReport?.index).toBe("loaded");
    const got = await cache.getMany(keys);
    expect(got.map((r) => (r === null ? null : r[0]!.toFlatArray()[0]))).toEqual([100, 101, null, 103, 104, 105]);
    expect(cache.stats.corrupt).toBe(1);
    await cache.close();
    // all of A's frames behind B's header, no index: the scan keeps none of them
    await writeFile(join(b, DATA_FILE), Buffer.concat([dataB.subarray(0, BOUND_HEADER), dataA.subarray(BOUND_HEADER)]));
    await unlink(join(b, INDEX_FILE));
    const scanned = await DiskStore.open(b, { binding: cacheFingerprint(teacherB) });
    expect(scanned.openReport).toMatchObject({ index: "rebuilt", scannedRecords: 0, truncatedBytes: dataA.length - BOUND_HEADER });
    expect(scanned.size).toBe(0);
    await scanned.close();
    expect(await wrongRowsServed(b)).toBe(0);
  });

  it("refuses a folder of the earlier format (manifest version 1, or a records.bin without a header)", async () => {
    await filled(dir, teacherB, 100);
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), "utf8")) as Record<string, unknown>;
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify({ ...manifest, version: 1, fingerprint: "0".repeat(64) }));
    const err = await wrongRowsServed(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheMismatchError);
    expect((err as Error).message).toMatch(/written by cache format 1, whose records are not bound to their teacher/);
    // a records.bin of format 1 (frames from offset 0) under a current manifest
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
    const old = join(dir, "old");
    const store = await DiskStore.open(old);
    await store.put("e0", encodeRecord([Tensor.from([7, 7, 7])]));
    await store.close();
    await writeFile(join(dir, DATA_FILE), (await readFile(join(old, DATA_FILE))).subarray(HEADER));
    await rm(join(dir, INDEX_FILE));
    await expect(wrongRowsServed(dir)).rejects.toThrow(/records\.bin was written by an earlier cache format/);
    expect(await wrongRowsServed(dir, { rebuild: true })).toBe(0);
  });

  it("rewrites a damaged header and keeps only the frames that pass their bound CRC", async () => {
    await filled(dir, teacherB, 100);
    const data = await readFile(join(dir, DATA_FILE));
    flip(data, 20, 0x01); // inside the fingerprint
    await writeFile(join(dir, DATA_FILE), data);
    const cache = await TeacherCache.open({ dir, memoryBytes: 0, dtype: "float32", fingerprintParts: teacherB });
    expect(cache.openReport).toMatchObject({ index: "rebuilt", reason: "the header of records.bin is damaged", scannedRecords: 6 });
    expect((await cache.getMany(keys)).map((r) => r![0]!.toFlatArray()[0])).toEqual([100, 101, 102, 103, 104, 105]);
    await cache.close();
    // a header torn while the file was created: an empty store
    await writeFile(join(dir, DATA_FILE), data.subarray(0, 5));
    await rm(join(dir, INDEX_FILE));
    const torn = await DiskStore.open(dir, { binding: cacheFingerprint(teacherB) });
    expect(torn.openReport.index).toBe("empty");
    expect(torn.size).toBe(0);
    await torn.close();
    expect((await stat(join(dir, DATA_FILE))).size).toBe(BOUND_HEADER);
  });
});

describe("example keys and rows", () => {
  const batch = (ids: number[][]): Record<string, Tensor> => ({
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1)),
      "int64",
    ),
    scale: Tensor.from(2), // not batched: part of every key
  });

  it("are stable, differ between rows, and follow content, not position", () => {
    const a = exampleKeys(
      batch([
        [1, 2, 3],
        [4, 5, 6],
        [1, 2, 4],
      ]),
    );
    expect(a).toEqual(
      exampleKeys(
        batch([
          [1, 2, 3],
          [4, 5, 6],
          [1, 2, 4],
        ]),
      ),
    );
    expect(new Set(a).size).toBe(3);
    for (const k of a) expect(k).toMatch(/^h:[0-9a-f]{32}$/);
    const b = exampleKeys(
      batch([
        [4, 5, 6],
        [1, 2, 3],
        [7, 7, 7],
      ]),
    );
    expect(b[0]).toBe(a[1]);
    expect(b[1]).toBe(a[0]);
    expect(exampleKeys({ ...batch([[1, 2, 3]]), scale: Tensor.from(3) })[0]).not.toBe(a[0]);
  });

  it("use ids when given an idKey", () => {
    const b = { ...batch([[1], [2]]), id: Tensor.from([7n, 123456789012n]) };
    expect(exampleKeys(b, { idKey: "id" })).toEqual(["id:7", "id:123456789012"]);
    expect(exampleKeys({ id: Tensor.from([3, 4], "int32") }, { idKey: "id" })).toEqual(["id:3", "id:4"]);
    expect(() => exampleKeys(b, { idKey: "missing" })).toThrow(/no "missing" tensor/);
    expect(() => exampleKeys({ id: Tensor.from([1.5]) }, { idKey: "id" })).toThrow(/int64 or int32/);
  });

  it("slices and stacks rows", () => {
    const t = Tensor.from([[[1, 2]], [[3, 4]], [[5, 6]]]);
    const row = sliceRow(t, 1);
    expect(row.shape).toEqual([1, 2]);
    expect(row.toArray()).toEqual([[3, 4]]);
    expect(row.data.buffer).not.toBe(t.data.buffer);
    expect(stackRows([sliceRow(t, 2), row]).toArray()).toEqual([[[5, 6]], [[3, 4]]]);
    expect(() => stackRows([row, Tensor.from([1, 2])])).toThrow(/rows differ/);
    expect(() => sliceRow(t, 3)).toThrow(RangeError);
  });
});

describe("TeacherCache", () => {
  // Row i: logits i*100 + j (exact in float16), top-k indices 1000 + i.
  function teacherBatch(rows: number[]): Tensor[] {
    return [
      Tensor.from(rows.map((i) => [0, 1, 2, 3].map((j) => i * 100 + j))),
      Tensor.from(rows.map((i) => [BigInt(1000 + i), BigInt(2000 + i)])),
    ];
  }

  for (const mode of ["memory", "disk"] as const) {
    it(`putBatch/getBatch returns each example's own row in any key order (${mode})`, async () => {
      const cache = await TeacherCache.open({
        ...(mode === "disk" ? { dir, memoryBytes: 0 } : {}),
        dtype: "float16",
        fingerprintParts: parts(),
      });
      const keys = ["e0", "e1", "e2", "e3", "e4", "e5"];
      await cache.putBatch(keys, teacherBatch([0, 1, 2, 3, 4, 5]));
      await cache.flush();
      const order = [4, 0, 5, 2, 1, 3];
      const got = await cache.getBatch(order.map((i) => keys[i]!));
      expect(got).not.toBeNull();
      const [logits, indices] = got!;
      expect(logits!.dtype).toBe("float16");
      expect(logits!.shape).toEqual([6, 4]);
      expect(toFloat32(logits!).toArray()).toEqual(teacherBatch(order)[0]!.toArray());
      expect(indices!.dtype).toBe("int64");
      expect(indices!.toArray()).toEqual(teacherBatch(order)[1]!.toArray());

      expect(await cache.getBatch(["e1", "nope"])).toBeNull();
      const many = await cache.getMany(["e3", "nope"]);
      expect(many[1]).toBeNull();
      expect(toFloat32(many[0]![0]!).toArray()).toEqual([300, 301, 302, 303]);
      expect(cache.stats).toMatchObject({ hits: 7, misses: 3, writes: 6, corrupt: 0 });
      await cache.close();
    });
  }

  it("reads through from disk after reopen and serves a damaged record as a miss", async () => {
    const bf16 = parts({ dtype: "bfloat16" });
    const cache = await TeacherCache.open({ dir, memoryBytes: 0, dtype: "bfloat16", fingerprintParts: bf16 });
    await cache.putBatch(["a", "b", "c"], teacherBatch([0, 1, 2]));
    await cache.close();
    const data = await readFile(join(dir, DATA_FILE));
    flip(data, BOUND_HEADER + Math.floor((data.length - BOUND_HEADER) / 2), 0xff); // inside "b"
    await writeFile(join(dir, DATA_FILE), data);
    const again = await TeacherCache.open({ dir, dtype: "bfloat16", fingerprintParts: bf16 });
    const got = await again.getMany(["a", "b", "c"]);
    expect(got[1]).toBeNull();
    expect(toFloat32(got[2]![0]!).toArray()).toEqual([200, 201, 202, 203]);
    expect(again.stats).toMatchObject({ hits: 2, misses: 1, corrupt: 1 });
    await again.putBatch(["b"], teacherBatch([1]));
    expect(toFloat32((await again.getBatch(["b"]))![0]!).toArray()).toEqual([[100, 101, 102, 103]]);
    await again.close();
  });

  it("evicts least recently used records from the memory tier", async () => {
    const [logits, indices] = teacherBatch([0]);
    const recordBytes = encodeRecord([sliceRow(toStorageDtype(logits!, "float16"), 0), sliceRow(indices!, 0)]).byteLength;
    // room for two records under two-character keys
    const cache = await TeacherCache.open({ memoryBytes: 2 * (recordBytes + 4), dtype: "float16", fingerprintParts: parts() });
    await cache.putBatch(["k1", "k2"], teacherBatch([1, 2]));
    await cache.getMany(["k1"]);
    await cache.putBatch(["k3"], teacherBatch([3]));
    const got = await cache.getMany(["k1", "k2", "k3"]);
    expect(got.map((r) => r !== null)).toEqual([true, false, true]);
    await cache.close();
  });

  it("rejects a dtype that disagrees with the fingerprint and batch tensors of the wrong length", async () => {
    await expect(TeacherCache.open({ dtype: "bfloat16", fingerprintParts: parts() })).rejects.toThrow(/fingerprintParts.dtype/);
    const cache = await TeacherCache.open({ dtype: "float16", fingerprintParts: parts() });
    await expect(cache.putBatch(["a", "b"], teacherBatch([1]))).rejects.toThrow(/leading dim of 2/);
    await cache.close();
  });
});
