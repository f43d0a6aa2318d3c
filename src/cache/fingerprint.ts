/**
 * What a cache folder was filled for. The fingerprint hashes everything that changes teacher outputs; the folder's
 * manifest.json records it with the parts in readable form, so a mismatch can say what changed.
 */
import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { DATA_FILE, removeDiskStoreFiles } from "./disk-store.js";
import { CacheMismatchError, writingCacheFile } from "./errors.js";

export { CacheMismatchError } from "./errors.js";

export const MANIFEST_FILE = "manifest.json";
/** 2: records.bin carries the fingerprint (see disk-store.ts); folders of version 1 are refused, or rebuilt. */
export const MANIFEST_VERSION = 2;
const MANIFEST_TMP = `${MANIFEST_FILE}.tmp`;

export interface FingerprintParts {
  /** Identifies the teacher's weights (a content hash, or a checkpoint name plus revision). */
  teacherWeights: string;
  /** The teacher adaptor spec (any JSON value). */
  adaptor: unknown;
  /** Storage dtype of the cached floats. */
  dtype: string;
  /** k when only the top-k logits are kept; null for dense logits. */
  topK: number | null;
  /** n when n sampled ids per row are kept instead (teacherCache.samples); absent or null otherwise. */
  samples?: number | null;
  temperature?: number | null;
  /** Anything about tokenization or batching that changes the teacher's inputs. */
  preprocessing?: string;
  /** Teacher features held besides the logits ("hidden[2]", …); absent for a logits-only cache. */
  features?: string[];
  /** Storage form of the features (float32, float16, int8); with `features`. */
  featureDtype?: string;
}

/** The parts with optional fields filled in and the adaptor as plain JSON: what the manifest stores. */
export interface ManifestParts {
  teacherWeights: string;
  adaptor: unknown;
  dtype: string;
  topK: number | null;
  /** Present only for the sampled form, so the fingerprints of other caches stay as they were. */
  samples?: number;
  temperature: number | null;
  preprocessing: string | null;
  /** Only in caches with features: a logits-only cache keeps the fingerprint it had before features existed. */
  features?: string[];
  featureDtype?: string;
}

export interface CacheManifest {
  version: number;
  fingerprint: string;
  parts: ManifestParts;
  createdAt: string;
}

/** JSON with object keys sorted at every level, so equal values give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  const text = canonical(value, "$");
  if (text === undefined) throw new TypeError("canonicalJson: the value has no JSON form");
  return text;
}

function canonical(value: unknown, path: string): string | undefined {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${path} is ${value}, which JSON cannot hold`);
      return JSON.stringify(value);
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
    case "bigint":
      throw new TypeError(`canonicalJson: ${path} is a bigint; pass it as a string or number`);
  }
  const obj = value as { toJSON?: () => unknown };
  if (typeof obj.toJSON === "function") return canonical(obj.toJSON(), path);
  if (Array.isArray(value)) return `[${value.map((v, i) => canonical(v, `${path}[${i}]`) ?? "null").join(",")}]`;
  const fields: string[] = [];
  for (const key of Object.keys(value as object).sort()) {
    const text = canonical((value as Record<string, unknown>)[key], `${path}.${key}`);
    if (text !== undefined) fields.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${fields.join(",")}}`;
}

export function manifestParts(parts: FingerprintParts): ManifestParts {
  return {
    teacherWeights: parts.teacherWeights,
    adaptor: JSON.parse(canonicalJson(parts.adaptor ?? null)) as unknown,
    dtype: parts.dtype,
    topK: parts.topK,
    ...(parts.samples ? { samples: parts.samples } : {}),
    temperature: parts.temperature ?? null,
    preprocessing: parts.preprocessing ?? null,
    ...(parts.features?.length ? { features: [...parts.features], featureDtype: parts.featureDtype ?? "float32" } : {}),
  };
}

/** sha256 hex of the canonical JSON of the parts (optional parts absent and null hash alike). */
export function cacheFingerprint(parts: FingerprintParts): string {
  const text = canonicalJson({ version: MANIFEST_VERSION, ...manifestParts(parts) });
  return createHash("sha256").update(text).digest("hex");
}

/** What differs between the manifest's parts and the new ones, in words. */
export function describeChanges(old: ManifestParts, next: ManifestParts): string[] {
  const changes: string[] = [];
  if (old.teacherWeights !== next.teacherWeights) {
    changes.push(`teacher weights changed (${short(old.teacherWeights)} → ${short(next.teacherWeights)})`);
  }
  if (canonicalJson(old.adaptor ?? null) !== canonicalJson(next.adaptor ?? null)) changes.push("adaptor changed");
  if (old.dtype !== next.dtype) changes.push(`dtype ${old.dtype} → ${next.dtype}`);
  if (old.topK !== next.topK) changes.push(`top-k ${old.topK ?? "off (dense)"} → ${next.topK ?? "off (dense)"}`);
  if (old.samples !== next.samples) changes.push(`samples ${old.samples ?? "off"} → ${next.samples ?? "off"}`);
  if (old.temperature !== next.temperature) {
    changes.push(`temperature ${old.temperature ?? "none"} → ${next.temperature ?? "none"}`);
  }
  if (old.preprocessing !== next.preprocessing) changes.push("preprocessing changed");
  const features = (p: ManifestParts) => (p.features?.length ? p.features.join(", ") : "none (logits only)");
  if (features(old) !== features(next)) changes.push(`teacher features ${features(old)} → ${features(next)}`);
  else if (old.features?.length && old.featureDtype !== next.featureDtype) {
    changes.push(`featureDtype ${old.featureDtype} → ${next.featureDtype}`);
  }
  return changes;
}

function short(text: string): string {
  return text.length > 48 ? `${text.slice(0, 45)}...` : text;
}

export interface CheckManifestOptions {
  /** Discard records filled for other settings instead of refusing them. */
  rebuild?: boolean;
}

/**
 * Makes sure the folder's records were filled for `fingerprint`: writes the manifest in a new folder, accepts a
 * matching one, and otherwise throws CacheMismatchError, or with `rebuild` deletes the records and starts over.
 * Records without a readable manifest have an unknown origin and are treated as a mismatch.
 */
export async function checkManifest(
  dir: string,
  fingerprint: string,
  parts: FingerprintParts,
  options: CheckManifestOptions = {},
): Promise<"created" | "ok" | "rebuilt"> {
  await writingCacheFile(dir, "the folder", () => mkdir(dir, { recursive: true }));
  const next = manifestParts(parts);
  const manifest = await readManifest(dir);
  if (typeof manifest !== "string" && manifest.fingerprint === fingerprint) return "ok";
  if (manifest === "missing" && !hasRecords(dir)) {
    await writeManifest(dir, fingerprint, next);
    return "created";
  }
  if (!options.rebuild) {
    let changes: string[];
    if (manifest === "missing") changes = [`the folder has records but no ${MANIFEST_FILE}, so their teacher is unknown`];
    else if (manifest === "unreadable") changes = [`${MANIFEST_FILE} is unreadable, so the records' teacher is unknown`];
    else {
      changes = describeChanges(manifest.parts, next);
      if (manifest.version !== MANIFEST_VERSION) changes = [formatChange(manifest.version)];
      else if (changes.length === 0) changes = ["the fingerprint differs from the one its manifest's parts give"];
    }
    throw new CacheMismatchError(dir, changes);
  }
  // The manifest goes first: if we stop halfway, records without a manifest are refused, never reused.
  await rm(join(dir, MANIFEST_FILE), { force: true });
  await removeDiskStoreFiles(dir);
  await writeManifest(dir, fingerprint, next);
  return "rebuilt";
}

function formatChange(version: unknown): string {
  if (typeof version === "number" && version < MANIFEST_VERSION) {
    return `it was written by cache format ${version}, whose records are not bound to their teacher (this version writes format ${MANIFEST_VERSION})`;
  }
  return `it was written by cache format ${String(version)}; this version reads format ${MANIFEST_VERSION}`;
}

export async function readManifest(dir: string): Promise<CacheManifest | "missing" | "unreadable"> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw err;
  }
  try {
    const m = JSON.parse(text) as Partial<CacheManifest> | null;
    const valid = typeof m === "object" && m !== null && typeof m.fingerprint === "string" && typeof m.parts === "object";
    return valid && m.parts !== null ? (m as CacheManifest) : "unreadable";
  } catch {
    return "unreadable";
  }
}

function hasRecords(dir: string): boolean {
  const data = join(dir, DATA_FILE);
  return existsSync(data) && statSync(data).size > 0;
}

/** Writes manifest.json atomically; on failure (a full disk) no temporary file is left. */
async function writeManifest(dir: string, fingerprint: string, parts: ManifestParts): Promise<void> {
  const manifest: CacheManifest = { version: MANIFEST_VERSION, fingerprint, parts, createdAt: new Date().toISOString() };
  const tmp = join(dir, MANIFEST_TMP);
  await writingCacheFile(dir, MANIFEST_FILE, async () => {
    try {
      const fh = await open(tmp, "w");
      try {
        await fh.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(dir, MANIFEST_FILE));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  });
}
