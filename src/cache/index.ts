export type { StorageDType } from "./convert.js";
export { isFloatDType, STORAGE_DTYPES, toFloat32, toStorageDtype } from "./convert.js";
export type { DiskStoreIo, DiskStoreOpenReport, DiskStoreOptions, DiskStoreStats } from "./disk-store.js";
export { DATA_FILE, DiskStore, INDEX_FILE, MAX_KEY_BYTES, removeDiskStoreFiles } from "./disk-store.js";
export type { CacheWriteErrorPolicy } from "./errors.js";
export { CACHE_WRITE_ERROR_POLICIES, CacheWriteError } from "./errors.js";
export type { ExampleKeyOptions } from "./example-key.js";
export { batchSize, exampleKeys, rowView, sliceRow, stackRows } from "./example-key.js";
export type { FeatureDType, FeaturePlan, FeatureRef } from "./features.js";
export { FEATURE_DTYPES, featureRefs } from "./features.js";
export type { FeatureFidelityOptions, FeatureFidelityReport, FidelityOptions, FidelityReport } from "./fidelity.js";
export type { CacheManifest, CheckManifestOptions, FingerprintParts, ManifestParts } from "./fingerprint.js";
export {
  CacheMismatchError,
  cacheFingerprint,
  canonicalJson,
  checkManifest,
  describeChanges,
  MANIFEST_FILE,
  MANIFEST_VERSION,
  manifestParts,
  readManifest,
} from "./fingerprint.js";
export type { MemoryStoreStats } from "./memory-store.js";
export { MemoryStore } from "./memory-store.js";
export { decodeRecord, encodeRecord, RECORD_VERSION, RecordFormatError } from "./record.js";
export type { TeacherCacheOptions, TeacherCacheStats } from "./teacher-cache.js";
export { DEFAULT_MEMORY_BYTES, TeacherCache } from "./teacher-cache.js";
