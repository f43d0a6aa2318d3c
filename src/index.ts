export const VERSION = "0.1.0";
export { Tensor, bytesPerElement } from "./tensor/index.js";
export type { DType, NestedArray, TensorStorage } from "./tensor/index.js";
export { Worker } from "./worker/worker.js";
export type { WorkerOptions, WorkerInfo, Device, CallOptions } from "./worker/worker.js";
export { ModelHandle } from "./worker/model-handle.js";
export type { Batch, ModelOutputs, LoadModelOptions, CreateModelOptions, Task } from "./worker/model-handle.js";
export { WorkerError, WorkerCrashedError, WorkerStartError, WorkerClosedError } from "./worker/errors.js";
export { ProtocolError } from "./worker/errors.js";
export { setupPythonEnv, doctor, formatDoctor, resolvePython, PythonEnvError } from "./env/python-env.js";
export * from "./config/index.js";
export * from "./adaptor/index.js";
export { BasicTrainer } from "./distillers/basic-trainer.js";
export type { BasicTrainerOptions } from "./distillers/basic-trainer.js";
export { BasicDistiller } from "./distillers/basic-distiller.js";
export { GeneralDistiller } from "./distillers/general-distiller.js";
export { MultiTeacherDistiller } from "./distillers/multi-teacher-distiller.js";
export type { MultiTeacherDistillerOptions } from "./distillers/multi-teacher-distiller.js";
export { MultiTaskDistiller, TaskSampler } from "./distillers/multi-task-distiller.js";
export type { MultiTaskDistillerOptions, MultiTaskTrainOptions } from "./distillers/multi-task-distiller.js";
export { EMDDistiller } from "./distillers/emd-distiller.js";
export type { EmdDistillerOptions, EmdOptions } from "./distillers/emd-distiller.js";
export { registerLoss } from "./losses/registry.js";
export type { CustomLoss } from "./losses/registry.js";
export type { DistillerOptions } from "./distillers/general-distiller.js";
export { NO_DECAY_GROUP } from "./train/options.js";
export type { LoopOptions, NonFiniteAction, CallbackInfo, DataSource, OptimizerSpec, SchedulerSpec } from "./train/options.js";
export type { TrainOptions } from "./distillers/train-options.js";
export type { TrainResult } from "./train/loop.js";
export { TrainingError, NonFiniteLossError, CheckpointWriteError } from "./train/errors.js";
export type { StepMetrics } from "./train/metrics.js";
export { weightSchedule } from "./schedules/weight.js";
export { withPython } from "./interop/pythonia.js";
export type { PythonBridge, WithPythonOptions } from "./interop/pythonia.js";
export { inspectCheckpoint, CheckpointInspectError } from "./interop/inspect.js";
export type { CheckpointInfo, TensorInfo } from "./interop/inspect.js";
export { presets, recipes, presetNames } from "./presets/index.js";
export type { Preset, PresetMatch, PresetName, Recipe, RecipeName } from "./presets/index.js";
export * as augment from "./data/augment.js";
export { seededRng, rngFromState } from "./data/rng.js";
export type { Rng, RngState } from "./data/rng.js";
export { DistillCache } from "./cache/distill-cache.js";
export type { TeacherCacheSpec, OpenDistillCacheOptions, CacheCounters } from "./cache/distill-cache.js";
export { TeacherCache, CacheMismatchError } from "./cache/index.js";
export { CacheWriteError } from "./cache/errors.js";
export type { CacheWriteErrorPolicy } from "./cache/errors.js";
export { buildReport, writeEvalResult, readEvalResult } from "./report/index.js";
export type { TrainableReport, ModelDescription } from "./worker/model-handle.js";
export { TokenizerHandle } from "./worker/tokenizer-handle.js";
export type { EncodeOptions, EncodeWordsOptions, LoadTokenizerOptions, Padding, TokenizerDescription } from "./worker/tokenizer-handle.js";
export { makeBatches, batchPlan, selectRows, rowLengths, labelTensor, numRows } from "./data/collate.js";
export type { Encoded, BatchPlanOptions, SelectOptions } from "./data/collate.js";
export { accuracy, argmax, entityF1, bioEntities } from "./data/metrics.js";
export type { Entity, EntityScores, PRF } from "./data/metrics.js";
export { loadSentiment, splitSentiment, SENTIMENT_CREDIT, SENTIMENT_LABELS, SENTIMENT_SOURCES } from "./data/sentiment.js";
export type { SentimentExample, SentimentSplit, SentimentSource } from "./data/sentiment.js";
export {
  readWikiGold,
  parseWikiGold,
  splitByDocument,
  entityCounts,
  tagIds,
  ioToBio,
  WIKIGOLD_LABELS,
  WIKIGOLD_TYPES,
  WIKIGOLD_CREDIT,
} from "./data/wikigold.js";
export type { NerSentence, WikiGold } from "./data/wikigold.js";
export {
  readConll,
  parseConll,
  conllLabels,
  splitBySentence,
  splitStratified,
  readLabelledText,
  parseLabelledText,
  numClasses,
  DataFormatError,
  DataSplitError,
} from "./data/index.js";
export type {
  ConllCorpus,
  ConllOptions,
  DocumentSplitOptions,
  ClassId,
  TextExample,
  TextData,
  LabelledText,
  LabelledTextOptions,
  Split,
  SplitOptions,
} from "./data/index.js";
export { findPackagedModel, MINILM_L6 } from "./models/packaged.js";
export type { PackagedModel, PackagedModelSpec } from "./models/packaged.js";
