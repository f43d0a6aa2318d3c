/**
 * Disk tier: an append-only data file plus an index, read with positional reads so the heap holds only the index.
 *
 * records.bin starts with a header that binds it to one cache (the manifest's fingerprint), then holds frames
 * (little-endian):
 *   header: "TBCD" magic (4) | u16 format version (2) | u16 binding length | binding (UTF-8) | u32 CRC-32 of the above
 *   frame:  "TBCR" magic (4) | u32 key length | key (UTF-8) | u32 payload length | payload | u32 CRC-32 of binding ‖ key ‖ payload
 * The binding is checked on open (another cache's file is refused with CacheMismatchError) and is part of every
 * frame's CRC, so a frame spliced in from another cache fails its check like a damaged one and is not served (for
 * bindings of equal length, whatever the frame holds, unless the two bindings' own CRC-32s collide: 1 in 2^32).
 * Seeding the CRC with the binding's CRC costs nothing per record. A key written again gets a new frame; the index points at the
 * newest one. Space is not reclaimed.
 *
 * index.bin maps key → (frame offset, frame length):
 *   "TBCX" magic (4) | u32 version (2) | u64 data length covered | u32 CRC field ending there (a frame's, or the header's)
 *   entries: u32 key length | key | u64 offset | u32 frame length
 *   trailer: u32 entry count | u32 CRC-32 of everything before it
 * It is written on flush()/close() to index.bin.tmp, fsynced, then renamed over index.bin, always after records.bin
 * is fsynced, so an index never points past durable data.
 *
 * On open the index is used when it covers records.bin exactly. When records.bin is longer (a run stopped before
 * flushing) only the part past the index is scanned; when the index is missing, corrupt or claims more data than
 * there is, the whole file is scanned. A scan skips damaged frames (resyncing on the next valid frame) and cuts a
 * torn last frame off the file. Every read re-checks the frame's magic, key and CRC: a failure is a miss, counted
 * in `stats.corrupt`, and the key leaves the index so the record gets recomputed. Corrupt data never throws; a
 * damaged header is rewritten and the frames behind it are kept only if they pass their (bound) CRC.
 *
 * A write that fails (a full disk) throws CacheWriteError naming the folder and the file; the data file is cut
 * back to its last whole frame and no temporary file is left, so what was written before stays readable.
 *
 * One writer per folder: two processes appending to the same records.bin would overwrite each other's frames
 * (detected by the CRC, so never served, but lost).
 */
import { constants } from "node:fs";
import { type FileHandle, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "./crc32.js";
import { CacheMismatchError, CacheWriteError, writingCacheFile } from "./errors.js";

export const DATA_FILE = "records.bin";
export const INDEX_FILE = "index.bin";
const INDEX_TMP = `${INDEX_FILE}.tmp`;

const FILE_MAGIC = Uint8Array.of(0x54, 0x42, 0x43, 0x44); // "TBCD"
const FRAME_MAGIC = Uint8Array.of(0x54, 0x42, 0x43, 0x52); // "TBCR"
const INDEX_MAGIC = Uint8Array.of(0x54, 0x42, 0x43, 0x58); // "TBCX"
/** 1: frames from offset 0, no binding. 2: a header with the binding, which seeds every frame's CRC. */
const FILE_VERSION = 2;
const INDEX_VERSION = 2;
/** magic + version + binding length + CRC */
const HEADER_OVERHEAD = 12;
const MAX_BINDING_BYTES = 0xffff;
const INDEX_HEADER = 20;
const INDEX_TRAILER = 8;
/** magic + key length + payload length + CRC */
const FRAME_OVERHEAD = 16;
export const MAX_KEY_BYTES = 0xffff;
const MAX_PAYLOAD_BYTES = 0xffffffff;
/** Largest single read while scanning or writing the index. */
const CHUNK = 1 << 20;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

interface IndexEntry {
  offset: number;
  length: number;
}

export interface DiskStoreOptions {
  /**
   * What the records belong to (a teacher cache passes its fingerprint). It is written in records.bin's header and
   * mixed into every frame's CRC: a file bound to something else is refused, a frame from one never passes.
   */
  binding?: string;
}

export interface DiskStoreOpenReport {
  /** How the index was obtained: none needed, read from index.bin, index.bin + a scan of the tail, or a full scan. */
  index: "empty" | "loaded" | "tail-scanned" | "rebuilt";
  /** Why a scan was needed; null when none was. */
  reason: string | null;
  /** Frames indexed by the scan. */
  scannedRecords: number;
  /** Damaged bytes skipped in the middle of the file (their frames are misses). */
  skippedBytes: number;
  /** Bytes of a torn last frame cut off the end of records.bin. */
  truncatedBytes: number;
}

export interface DiskStoreStats {
  records: number;
  dataBytes: number;
  /** Frames that failed their check on read, plus damaged regions skipped by a scan at open. */
  corrupt: number;
  /** Records indexed by scanning records.bin at open (index missing, stale or corrupt). */
  recovered: number;
}

/** Reads of records.bin, for checking that memory stays bounded. */
export interface DiskStoreIo {
  reads: number;
  bytesRead: number;
  largestRead: number;
}

export class DiskStore {
  readonly io: DiskStoreIo = { reads: 0, bytesRead: 0, largestRead: 0 };
  private corrupt: number;
  private readonly recovered: number;
  private indexDirty = false;
  private unsynced = false;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly fh: FileHandle,
    /** CRC-32 of the binding: the initial value of every frame's CRC */
    private readonly seed: number,
    private readonly index: Map<string, IndexEntry>,
    private end: number,
    private tailCrc: number,
    readonly openReport: DiskStoreOpenReport,
    corruptAtOpen: number,
  ) {
    this.corrupt = corruptAtOpen;
    this.recovered = openReport.scannedRecords;
  }

  /** Opens (or creates) the store in `dir`; throws CacheMismatchError when records.bin is bound to something else. */
  static async open(dir: string, options: DiskStoreOptions = {}): Promise<DiskStore> {
    const binding = utf8.encode(options.binding ?? "");
    if (binding.byteLength > MAX_BINDING_BYTES) throw new RangeError(`DiskStore: binding longer than ${MAX_BINDING_BYTES} bytes`);
    await writingCacheFile(dir, "the folder", () => mkdir(dir, { recursive: true }));
    const fh = await writingCacheFile(dir, DATA_FILE, () => open(join(dir, DATA_FILE), constants.O_RDWR | constants.O_CREAT, 0o644));
    try {
      return await DiskStore.recover(dir, fh, binding);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  private static async recover(dir: string, fh: FileHandle, binding: Uint8Array): Promise<DiskStore> {
    const io: DiskStoreIo = { reads: 0, bytesRead: 0, largestRead: 0 };
    const header = encodeHeader(binding);
    const dataStart = header.byteLength;
    const headerCrc = new DataView(header.buffer).getUint32(dataStart - 4, true);
    let size = (await fh.stat()).size;
    const found = size === 0 ? "empty" : await readHeader(fh, size, binding, io);
    if (typeof found === "object") throw new CacheMismatchError(dir, [found.problem]);
    let corrupt = 0;
    if (found !== "ok") {
      // a new file, a header torn while it was created, or a damaged one: (re)write it; what follows must then pass
      // the bound CRC to be kept
      await writingCacheFile(dir, DATA_FILE, async () => {
        await writeAt(fh, header, 0);
        await fh.datasync();
      });
      if (found === "damaged" && size >= dataStart) corrupt++;
      size = Math.max(size, dataStart);
    }
    const loaded = await loadIndex(join(dir, INDEX_FILE), dataStart);
    const report: DiskStoreOpenReport = { index: "empty", reason: null, scannedRecords: 0, skippedBytes: 0, truncatedBytes: 0 };
    let index = new Map<string, IndexEntry>();
    let scanFrom = -1;
    let tailCrc = headerCrc;
    if (found === "damaged" && size > dataStart) {
      scanFrom = dataStart;
      report.reason = `the header of ${DATA_FILE} is damaged`;
    } else if (size === dataStart) {
      if (typeof loaded !== "string" && loaded.dataLength > dataStart) report.reason = `${DATA_FILE} is empty`;
    } else if (typeof loaded === "string") {
      scanFrom = 0;
      report.reason = loaded;
    } else if (loaded.dataLength > size) {
      scanFrom = 0;
      report.reason = `${DATA_FILE} is shorter than ${INDEX_FILE} says (${size} < ${loaded.dataLength} bytes)`;
    } else if ((await readCrcField(fh, loaded.dataLength, io)) !== loaded.tailCrc) {
      scanFrom = 0;
      report.reason = `${INDEX_FILE} does not belong to this ${DATA_FILE}`;
    } else {
      index = loaded.entries;
      tailCrc = loaded.tailCrc;
      report.index = "loaded";
      if (loaded.dataLength < size) {
        scanFrom = loaded.dataLength;
        report.reason = `${DATA_FILE} has ${size - loaded.dataLength} bytes past the end of ${INDEX_FILE}`;
      }
    }
    let end = size;
    const seed = crc32(binding);
    if (scanFrom >= 0) {
      const whole = scanFrom === 0;
      if (whole) scanFrom = dataStart;
      report.index = whole || found === "damaged" ? "rebuilt" : "tail-scanned";
      if (whole) index = new Map();
      const scan = await scanFrames(fh, scanFrom, size, seed, index, io);
      end = scan.end;
      if (scan.lastCrc !== null) tailCrc = scan.lastCrc;
      corrupt += scan.damagedRegions;
      report.scannedRecords = scan.records;
      report.skippedBytes = scan.skippedBytes;
      report.truncatedBytes = size - end;
      if (end < size) {
        await writingCacheFile(dir, DATA_FILE, async () => {
          await fh.truncate(end);
          await fh.datasync();
        });
      }
    }
    const store = new DiskStore(dir, fh, seed, index, end, tailCrc, report, corrupt);
    Object.assign(store.io, io);
    if (scanFrom >= 0 || (size === dataStart && typeof loaded !== "string" && loaded.dataLength > dataStart)) {
      store.indexDirty = true;
      // on a full disk the records stay readable: the index is kept in memory and written at the next flush or close
      await store.flush().catch((err: unknown) => {
        if (!(err instanceof CacheWriteError)) throw err;
      });
    }
    return store;
  }

  get size(): number {
    return this.index.size;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  keys(): IterableIterator<string> {
    return this.index.keys();
  }

  get stats(): DiskStoreStats {
    return { records: this.index.size, dataBytes: this.end, corrupt: this.corrupt, recovered: this.recovered };
  }

  /** The record's payload (a view into a fresh buffer), or null on a miss or when the frame fails its check. */
  async get(key: string): Promise<Uint8Array | null> {
    this.assertOpen();
    const entry = this.index.get(key);
    if (entry === undefined) return null;
    const frame = new Uint8Array(entry.length);
    const n = await readAt(this.fh, frame, entry.offset, this.io);
    const payload = n === entry.length ? parseFrame(frame, key, this.seed) : null;
    if (payload === null) {
      this.corrupt++;
      if (this.index.get(key) === entry) {
        this.index.delete(key);
        this.indexDirty = true;
      }
    }
    return payload;
  }

  async put(key: string, payload: Uint8Array): Promise<void> {
    await this.putMany([[key, payload]]);
  }

  /**
   * Appends the records with one gathered write (payloads are not copied: leave them unchanged until this resolves).
   * Durable after the next flush().
   */
  async putMany(records: readonly (readonly [string, Uint8Array])[]): Promise<void> {
    this.assertOpen();
    if (records.length === 0) return;
    const frames = records.map(([key, payload]) => encodeFrame(key, payload, this.seed));
    await this.enqueue(async () => {
      this.assertOpen();
      await writingCacheFile(this.dir, DATA_FILE, async () => {
        try {
          await writevAt(
            this.fh,
            frames.flatMap((f) => f.parts),
            this.end,
          );
        } catch (err) {
          // don't leave a torn frame for the next append to sit behind (and give the space back)
          await this.fh.truncate(this.end).catch(() => undefined);
          throw err;
        }
      });
      let offset = this.end;
      for (let i = 0; i < frames.length; i++) {
        const length = frames[i]!.length;
        this.index.set(records[i]![0], { offset, length });
        offset += length;
      }
      this.end = offset;
      this.tailCrc = frames[frames.length - 1]!.crc;
      this.unsynced = true;
      this.indexDirty = true;
    });
  }

  /** fsyncs records.bin, then replaces index.bin atomically. */
  async flush(): Promise<void> {
    this.assertOpen();
    await this.enqueue(() => this.flushNow());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.enqueue(async () => {
      if (this.closed) return;
      try {
        await this.flushNow();
      } finally {
        this.closed = true;
        await this.fh.close();
      }
    });
  }

  private async flushNow(): Promise<void> {
    if (this.unsynced) {
      await writingCacheFile(this.dir, DATA_FILE, () => this.fh.datasync());
      this.unsynced = false;
    }
    if (!this.indexDirty) return;
    this.indexDirty = false;
    try {
      await writingCacheFile(this.dir, INDEX_FILE, () => writeIndex(this.dir, this.index, this.end, this.tailCrc));
    } catch (err) {
      this.indexDirty = true;
      throw err;
    }
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`DiskStore ${this.dir} is closed`);
  }
}

interface EncodedFrame {
  /** head (magic, key, payload length), payload, CRC: written gathered, so the payload is never copied */
  parts: Uint8Array[];
  length: number;
  crc: number;
}

/** The header of records.bin for `binding`. */
function encodeHeader(binding: Uint8Array): Uint8Array {
  const header = new Uint8Array(HEADER_OVERHEAD + binding.byteLength);
  const view = new DataView(header.buffer);
  header.set(FILE_MAGIC, 0);
  view.setUint16(4, FILE_VERSION, true);
  view.setUint16(6, binding.byteLength, true);
  header.set(binding, 8);
  view.setUint32(8 + binding.byteLength, crc32(header.subarray(0, 8 + binding.byteLength)), true);
  return header;
}

/**
 * Whether records.bin's header binds it to `binding`: "ok"; "damaged" when it is not a whole, valid header (torn at
 * creation, or flipped bytes); or the problem when it is a valid header of something else, or a file of the earlier
 * format (frames from offset 0, bound to nothing).
 */
async function readHeader(
  fh: FileHandle,
  size: number,
  binding: Uint8Array,
  io: DiskStoreIo,
): Promise<"ok" | "damaged" | { problem: string }> {
  const head = new Uint8Array(Math.min(size, 8));
  await readAt(fh, head, 0, io);
  if (head.byteLength >= FRAME_MAGIC.length && hasMagic(head, 0, FRAME_MAGIC)) {
    return { problem: `${DATA_FILE} was written by an earlier cache format that does not bind records to their teacher` };
  }
  if (head.byteLength < 8 || !hasMagic(head, 0, FILE_MAGIC)) return "damaged";
  const view = new DataView(head.buffer);
  const length = view.getUint16(6, true);
  if (size < HEADER_OVERHEAD + length) return "damaged";
  const rest = new Uint8Array(length + 4);
  await readAt(fh, rest, 8, io);
  const stored = rest.subarray(0, length);
  if (crc32(stored, crc32(head)) !== new DataView(rest.buffer).getUint32(length, true)) return "damaged";
  const version = view.getUint16(4, true);
  if (version !== FILE_VERSION) {
    return { problem: `${DATA_FILE} has format version ${version}; this version of textbrewer-ts reads version ${FILE_VERSION}` };
  }
  if (length === binding.byteLength && stored.every((b, i) => b === binding[i])) return "ok";
  const theirs = utf8Decoder.decode(stored) || "none";
  const ours = utf8Decoder.decode(binding) || "none";
  return { problem: `${DATA_FILE} holds the records of another cache (fingerprint ${short(theirs)}; this folder's is ${short(ours)})` };
}

function short(text: string): string {
  return text.length > 16 ? `${text.slice(0, 16)}…` : text;
}

function encodeFrame(key: string, payload: Uint8Array, seed: number): EncodedFrame {
  const keyBytes = utf8.encode(key);
  if (keyBytes.byteLength > MAX_KEY_BYTES) throw new RangeError(`DiskStore: key longer than ${MAX_KEY_BYTES} bytes`);
  if (payload.byteLength > MAX_PAYLOAD_BYTES) throw new RangeError(`DiskStore: record larger than ${MAX_PAYLOAD_BYTES} bytes`);
  const head = new Uint8Array(12 + keyBytes.byteLength);
  const view = new DataView(head.buffer);
  head.set(FRAME_MAGIC, 0);
  view.setUint32(4, keyBytes.byteLength, true);
  head.set(keyBytes, 8);
  view.setUint32(8 + keyBytes.byteLength, payload.byteLength, true);
  const crc = crc32(payload, crc32(keyBytes, seed));
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, crc, true);
  return { parts: [head, payload, tail], length: FRAME_OVERHEAD + keyBytes.byteLength + payload.byteLength, crc };
}

/** The payload of a whole frame read from the index, or null if anything about it is off. */
function parseFrame(frame: Uint8Array, key: string, seed: number): Uint8Array | null {
  if (frame.byteLength < FRAME_OVERHEAD || !hasMagic(frame, 0, FRAME_MAGIC)) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const keyLength = view.getUint32(4, true);
  if (FRAME_OVERHEAD + keyLength > frame.byteLength) return null;
  const payloadLength = view.getUint32(8 + keyLength, true);
  if (FRAME_OVERHEAD + keyLength + payloadLength !== frame.byteLength) return null;
  const keyBytes = frame.subarray(8, 8 + keyLength);
  const payload = frame.subarray(12 + keyLength, 12 + keyLength + payloadLength);
  if (crc32(payload, crc32(keyBytes, seed)) !== view.getUint32(frame.byteLength - 4, true)) return null;
  if (utf8Decoder.decode(keyBytes) !== key) return null;
  return payload;
}

function hasMagic(bytes: Uint8Array, at: number, magic: Uint8Array): boolean {
  for (let i = 0; i < magic.length; i++) if (bytes[at + i] !== magic[i]) return false;
  return true;
}

async function readAt(fh: FileHandle, buf: Uint8Array, position: number, io: DiskStoreIo): Promise<number> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesRead } = await fh.read(buf, done, buf.byteLength - done, position + done);
    io.reads++;
    io.bytesRead += bytesRead;
    io.largestRead = Math.max(io.largestRead, bytesRead);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

async function writeAt(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesWritten } = await fh.write(buf, done, buf.byteLength - done, position + done);
    done += bytesWritten;
  }
}

async function writevAt(fh: FileHandle, buffers: Uint8Array[], position: number): Promise<void> {
  const total = buffers.reduce((s, b) => s + b.byteLength, 0);
  let done = (await fh.writev(buffers, position)).bytesWritten;
  // a short gathered write is rare; finish buffer by buffer
  let start = 0;
  for (const b of buffers) {
    if (done >= total) break;
    const end = start + b.byteLength;
    if (end > done) {
      await writeAt(fh, b.subarray(Math.max(0, done - start)), position + done);
      done = end;
    }
    start = end;
  }
}

/** The CRC field that ends at `end`: the last four bytes of a frame, or of the header. */
async function readCrcField(fh: FileHandle, end: number, io: DiskStoreIo): Promise<number | null> {
  if (end < 4) return null;
  const buf = new Uint8Array(4);
  if ((await readAt(fh, buf, end - 4, io)) !== 4) return null;
  return new DataView(buf.buffer).getUint32(0, true);
}

/** A window over records.bin for scanning: never holds more than CHUNK bytes (or one key) at a time. */
class ScanReader {
  private buf = new Uint8Array(0);
  private start = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly io: DiskStoreIo,
  ) {}

  /** A view of [pos, pos + n); valid until the next call. */
  async bytes(pos: number, n: number): Promise<Uint8Array> {
    if (pos < this.start || pos + n > this.start + this.buf.byteLength) {
      const want = Math.min(Math.max(n, CHUNK), this.size - pos);
      if (this.buf.buffer.byteLength < want) this.buf = new Uint8Array(Math.max(want, CHUNK));
      const got = await readAt(this.fh, new Uint8Array(this.buf.buffer, 0, want), pos, this.io);
      this.buf = new Uint8Array(this.buf.buffer, 0, got);
      this.start = pos;
    }
    const at = pos - this.start;
    return this.buf.subarray(at, at + n);
  }

  async crc(pos: number, n: number, crc: number): Promise<number> {
    let c = crc;
    for (let done = 0; done < n; ) {
      const m = Math.min(CHUNK, n - done);
      c = crc32(await this.bytes(pos + done, m), c);
      done += m;
    }
    return c;
  }
}

interface ScannedFrame {
  key: string;
  length: number;
  crc: number;
}

async function frameAt(r: ScanReader, pos: number, seed: number): Promise<ScannedFrame | null> {
  if (pos + FRAME_OVERHEAD > r.size) return null;
  const head = await r.bytes(pos, 8);
  if (!hasMagic(head, 0, FRAME_MAGIC)) return null;
  const keyLength = new DataView(head.buffer, head.byteOffset, 8).getUint32(4, true);
  if (keyLength > MAX_KEY_BYTES || pos + FRAME_OVERHEAD + keyLength > r.size) return null;
  const keyAndLength = await r.bytes(pos + 8, keyLength + 4);
  const keyBytes = keyAndLength.subarray(0, keyLength);
  const key = utf8Decoder.decode(keyBytes);
  let crc = crc32(keyBytes, seed);
  const payloadLength = new DataView(keyAndLength.buffer, keyAndLength.byteOffset + keyLength, 4).getUint32(0, true);
  const length = FRAME_OVERHEAD + keyLength + payloadLength;
  if (pos + length > r.size) return null;
  crc = await r.crc(pos + 12 + keyLength, payloadLength, crc);
  const stored = await r.bytes(pos + length - 4, 4);
  if (new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0, true) !== crc) return null;
  return { key, length, crc };
}

/** Position of the next valid frame at or after `from`, or -1. */
async function nextFrame(r: ScanReader, from: number, seed: number): Promise<number> {
  let pos = from;
  while (pos + FRAME_OVERHEAD <= r.size) {
    const window = await r.bytes(pos, Math.min(CHUNK, r.size - pos));
    const hit = Buffer.from(window.buffer, window.byteOffset, window.byteLength).indexOf(FRAME_MAGIC);
    if (hit < 0) {
      pos += Math.max(1, window.byteLength - (FRAME_MAGIC.length - 1));
      continue;
    }
    const candidate = pos + hit;
    if ((await frameAt(r, candidate, seed)) !== null) return candidate;
    pos = candidate + 1;
  }
  return -1;
}

interface ScanResult {
  /** End of the last valid frame: where the file should be cut. */
  end: number;
  records: number;
  skippedBytes: number;
  damagedRegions: number;
  lastCrc: number | null;
}

async function scanFrames(
  fh: FileHandle,
  from: number,
  size: number,
  seed: number,
  index: Map<string, IndexEntry>,
  io: DiskStoreIo,
): Promise<ScanResult> {
  const r = new ScanReader(fh, size, io);
  const result: ScanResult = { end: from, records: 0, skippedBytes: 0, damagedRegions: 0, lastCrc: null };
  let pos = from;
  while (pos < size) {
    const frame = await frameAt(r, pos, seed);
    if (frame !== null) {
      index.set(frame.key, { offset: pos, length: frame.length });
      result.records++;
      result.lastCrc = frame.crc;
      pos += frame.length;
      result.end = pos;
      continue;
    }
    const next = await nextFrame(r, pos + 1, seed);
    if (next < 0) break;
    result.skippedBytes += next - pos;
    result.damagedRegions++;
    pos = next;
  }
  return result;
}

interface LoadedIndex {
  dataLength: number;
  tailCrc: number;
  entries: Map<string, IndexEntry>;
}

/** The index, or why it cannot be used. */
async function loadIndex(path: string, dataStart: number): Promise<LoadedIndex | string> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return `${INDEX_FILE} is missing`;
    throw err;
  }
  const corrupt = `${INDEX_FILE} is corrupt`;
  if (bytes.byteLength < INDEX_HEADER + INDEX_TRAILER || !hasMagic(bytes, 0, INDEX_MAGIC)) return corrupt;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const crcAt = bytes.byteLength - 4;
  if (crc32(bytes.subarray(0, crcAt)) !== view.getUint32(crcAt, true)) return corrupt;
  if (view.getUint32(4, true) !== INDEX_VERSION) return `${INDEX_FILE} has an unknown version`;
  const dataLength = Number(view.getBigUint64(8, true));
  if (dataLength < dataStart) return corrupt;
  const tailCrc = view.getUint32(16, true);
  const entries = new Map<string, IndexEntry>();
  const entriesEnd = bytes.byteLength - INDEX_TRAILER;
  let pos = INDEX_HEADER;
  while (pos < entriesEnd) {
    if (pos + 4 > entriesEnd) return corrupt;
    const keyLength = view.getUint32(pos, true);
    if (pos + 4 + keyLength + 12 > entriesEnd) return corrupt;
    const key = utf8Decoder.decode(bytes.subarray(pos + 4, pos + 4 + keyLength));
    pos += 4 + keyLength;
    const offset = Number(view.getBigUint64(pos, true));
    const length = view.getUint32(pos + 8, true);
    pos += 12;
    if (offset < dataStart || offset + length > dataLength || length < FRAME_OVERHEAD) return corrupt;
    entries.set(key, { offset, length });
  }
  if (view.getUint32(entriesEnd, true) !== entries.size) return corrupt;
  return { dataLength, tailCrc, entries };
}

/**
 * Writes the index in CHUNK-sized pieces to a temporary file, fsyncs it and renames it into place. When that fails
 * (a full disk) the temporary file is removed and index.bin stays as it was.
 */
async function writeIndex(dir: string, index: Map<string, IndexEntry>, dataLength: number, tailCrc: number): Promise<void> {
  const tmp = join(dir, INDEX_TMP);
  try {
    await writeIndexFile(tmp, index, dataLength, tailCrc);
    await rename(tmp, join(dir, INDEX_FILE));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

async function writeIndexFile(tmp: string, index: Map<string, IndexEntry>, dataLength: number, tailCrc: number): Promise<void> {
  const fh = await open(tmp, "w");
  try {
    const chunk = new Uint8Array(CHUNK);
    const view = new DataView(chunk.buffer);
    let used = 0;
    let written = 0;
    let crc = 0;
    const spill = async (): Promise<void> => {
      crc = crc32(chunk.subarray(0, used), crc);
      await writeAt(fh, chunk.subarray(0, used), written);
      written += used;
      used = 0;
    };
    chunk.set(INDEX_MAGIC, 0);
    view.setUint32(4, INDEX_VERSION, true);
    view.setBigUint64(8, BigInt(dataLength), true);
    view.setUint32(16, tailCrc, true);
    used = INDEX_HEADER;
    // Entries are counted as written: a key dropped (corrupt) while this runs may or may not be included.
    let count = 0;
    for (const [key, entry] of index) {
      const keyBytes = utf8.encode(key);
      if (used + 16 + keyBytes.byteLength > CHUNK) await spill();
      view.setUint32(used, keyBytes.byteLength, true);
      chunk.set(keyBytes, used + 4);
      used += 4 + keyBytes.byteLength;
      view.setBigUint64(used, BigInt(entry.offset), true);
      view.setUint32(used + 8, entry.length, true);
      used += 12;
      count++;
    }
    if (used + INDEX_TRAILER > CHUNK) await spill();
    view.setUint32(used, count, true);
    used += 4;
    crc = crc32(chunk.subarray(0, used), crc);
    view.setUint32(used, crc, true);
    used += 4;
    await writeAt(fh, chunk.subarray(0, used), written);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Makes the rename durable where directories can be fsynced (not on Windows). */
async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // best effort
  }
}

/** Deletes the data and index files (used when the cache is rebuilt for a new fingerprint). */
export async function removeDiskStoreFiles(dir: string): Promise<void> {
  for (const name of [DATA_FILE, INDEX_FILE, INDEX_TMP]) await rm(join(dir, name), { force: true });
}
