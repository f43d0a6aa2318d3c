export { TeacherCache, DEFAULT_MEMORY_BYTES } from "./teacher-cache.js";
export type { TeacherCacheOptions, TeacherCacheStats } from "./teacher-cache.js";
export { DiskStore, DATA_FILE, INDEX_FILE, MAX_KEY_BYTES, removeDiskStoreFiles } from "./disk-store.js";
export type { DiskStoreIo, DiskStoreOpenReport, DiskStoreOptions, DiskStoreStats } from "./disk-store.js";
export { CacheWriteError, CACHE_WRITE_ERROR_POLICIES } from "./errors.js";
export type { CacheWriteErrorPolicy } from "./errors.js";
export { MemoryStore } from "./memory-store.js";
export type { MemoryStoreStats } from "./memory-store.js";
export { encodeRecord, decodeRecord, RecordFormatError, RECORD_VERSION } from "./record.js";
export { toStorageDtype, toFloat32, isFloatDType, STORAGE_DTYPES } from "./convert.js";
export type { StorageDType } from "./convert.js";
export { exampleKeys, batchSize, sliceRow, rowView, stackRows } from "./example-key.js";
export type { ExampleKeyOptions } from "./example-key.js";
export {
  cacheFingerprint,
  canonicalJson,
  checkManifest,
  readManifest,
  describeChanges,
  manifestParts,
  CacheMismatchError,
  MANIFEST_FILE,
  MANIFEST_VERSION,
} from "./fingerprint.js";
export type { FingerprintParts, ManifestParts, CacheManifest, CheckManifestOptions } from "./fingerprint.js";
