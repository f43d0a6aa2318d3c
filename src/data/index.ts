/** The data helpers that hold for any corpus: readers, splits, batching, metrics, augmentation and the seeded generator. */
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
export { readConll, parseConll, conllLabels, ioToBio, entityCounts, tagIds, splitByDocument, splitBySentence } from "./conll.js";
export type { ConllCorpus, ConllOptions, DocumentSplitOptions, NerSentence } from "./conll.js";
export { readLabelledText, parseLabelledText, labelNames, numClasses } from "./classification.js";
export type { ClassId, TextExample, TextData, LabelledText, LabelledTextOptions } from "./classification.js";
export { splitStratified } from "./split.js";
export type { Split, SplitOptions } from "./split.js";
export { DataFormatError, DataSplitError } from "./errors.js";
export { makeBatches, batchPlan, selectRows, rowLengths, labelTensor, numRows } from "./collate.js";
export type { Encoded, BatchPlanOptions, SelectOptions } from "./collate.js";
export { accuracy, argmax, entityF1, bioEntities, median } from "./metrics.js";
export type { Entity, EntityScores, PRF } from "./metrics.js";
