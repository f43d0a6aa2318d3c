export { masking, deleting, nGramSampling, shortDisorder, longDisorder, longDisorderSpan } from "./augment.js";
export type {
  MaskingOptions,
  DeletingOptions,
  NGramSamplingOptions,
  ShortDisorderOptions,
  LongDisorderOptions,
} from "./augment.js";
export { seededRng, rngFromState } from "./rng.js";
export type { Rng, RngState } from "./rng.js";
