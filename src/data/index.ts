/** `textbrewer-ts/data`: the data helpers that hold for any corpus: readers, splits, batching, metrics, augmentation and the seeded generator. */

export type {
  DeletingOptions,
  LongDisorderOptions,
  MaskingOptions,
  NGramSamplingOptions,
  ShortDisorderOptions,
} from "./augment.js";
export * as augment from "./augment.js";
export { deleting, longDisorder, longDisorderSpan, masking, nGramSampling, shortDisorder } from "./augment.js";
export type { ClassId, LabelledText, LabelledTextOptions, TextData, TextExample } from "./classification.js";
export { labelNames, numClasses, parseLabelledText, readLabelledText } from "./classification.js";
export type { BatchPlanOptions, Encoded, SelectOptions } from "./collate.js";
export { batchPlan, labelTensor, makeBatches, numRows, rowLengths, selectRows } from "./collate.js";
export type { ConllCorpus, ConllOptions, DocumentSplitOptions, NerSentence } from "./conll.js";
export { conllLabels, entityCounts, ioToBio, parseConll, readConll, splitByDocument, splitBySentence, tagIds } from "./conll.js";
export { DataFormatError, DataSplitError } from "./errors.js";
export type { Entity, EntityScores, PRF } from "./metrics.js";
export { accuracy, argmax, bioEntities, entityF1, median } from "./metrics.js";
export type { Rng, RngState } from "./rng.js";
export { rngFromState, seededRng } from "./rng.js";
export type { Split, SplitOptions } from "./split.js";
export { splitStratified } from "./split.js";
