export const VERSION = "0.1.0";
export * from "./adaptor/index.js";
export type { CacheCounters, OpenDistillCacheOptions, TeacherCacheSpec } from "./cache/distill-cache.js";
export { DistillCache } from "./cache/distill-cache.js";
export type { CacheWriteErrorPolicy } from "./cache/errors.js";
export { CacheWriteError } from "./cache/errors.js";
export { CacheMismatchError, TeacherCache } from "./cache/index.js";
export * from "./config/index.js";
export * as augment from "./data/augment.js";
export type { BatchPlanOptions, Encoded, SelectOptions } from "./data/collate.js";
export { batchPlan, labelTensor, makeBatches, numRows, rowLengths, selectRows } from "./data/collate.js";
export type {
  ClassId,
  ConllCorpus,
  ConllOptions,
  DocumentSplitOptions,
  LabelledText,
  LabelledTextOptions,
  Split,
  SplitOptions,
  TextData,
  TextExample,
} from "./data/index.js";
export {
  conllLabels,
  DataFormatError,
  DataSplitError,
  numClasses,
  parseConll,
  parseLabelledText,
  readConll,
  readLabelledText,
  splitBySentence,
  splitStratified,
} from "./data/index.js";
export type { Entity, EntityScores, PRF } from "./data/metrics.js";
export { accuracy, argmax, bioEntities, entityF1 } from "./data/metrics.js";
export type { Rng, RngState } from "./data/rng.js";
export { rngFromState, seededRng } from "./data/rng.js";
export type { SentimentExample, SentimentSource, SentimentSplit } from "./data/sentiment.js";
export { loadSentiment, SENTIMENT_CREDIT, SENTIMENT_LABELS, SENTIMENT_SOURCES, splitSentiment } from "./data/sentiment.js";
export type { NerSentence, WikiGold } from "./data/wikigold.js";
export {
  entityCounts,
  ioToBio,
  parseWikiGold,
  readWikiGold,
  splitByDocument,
  tagIds,
  WIKIGOLD_CREDIT,
  WIKIGOLD_LABELS,
  WIKIGOLD_TYPES,
} from "./data/wikigold.js";
export { BasicDistiller } from "./distillers/basic-distiller.js";
export type { BasicTrainerOptions } from "./distillers/basic-trainer.js";
export { BasicTrainer } from "./distillers/basic-trainer.js";
export type { EmdDistillerOptions, EmdOptions } from "./distillers/emd-distiller.js";
export { EMDDistiller } from "./distillers/emd-distiller.js";
export type { DistillerOptions } from "./distillers/general-distiller.js";
export { GeneralDistiller } from "./distillers/general-distiller.js";
export type { MultiTaskDistillerOptions, MultiTaskTrainOptions } from "./distillers/multi-task-distiller.js";
export { MultiTaskDistiller, TaskSampler } from "./distillers/multi-task-distiller.js";
export type { MultiTeacherDistillerOptions } from "./distillers/multi-teacher-distiller.js";
export { MultiTeacherDistiller } from "./distillers/multi-teacher-distiller.js";
export type { TrainOptions } from "./distillers/train-options.js";
export { doctor, formatDoctor, PythonEnvError, resolvePython, setupPythonEnv } from "./env/python-env.js";
export type { CheckpointInfo, TensorInfo } from "./interop/inspect.js";
export { CheckpointInspectError, inspectCheckpoint } from "./interop/inspect.js";
export type { PythonBridge, WithPythonOptions } from "./interop/pythonia.js";
export { withPython } from "./interop/pythonia.js";
export * from "./layer-map/index.js";
export type { CustomLoss } from "./losses/registry.js";
export { registerLoss } from "./losses/registry.js";
export type { PackagedModel, PackagedModelSpec } from "./models/packaged.js";
export { findPackagedModel, MINILM_L6 } from "./models/packaged.js";
export type { Preset, PresetMatch, PresetName, Recipe, RecipeName, RecipePlan, RunnableRecipe } from "./presets/index.js";
export { formatRecipePlan, presetNames, presets, RUNNABLE_RECIPES, recipePlan, recipes } from "./presets/index.js";
export { buildReport, readEvalResult, writeEvalResult } from "./report/index.js";
export { weightSchedule } from "./schedules/weight.js";
export type { DType, NestedArray, TensorStorage } from "./tensor/index.js";
export { bytesPerElement, Tensor } from "./tensor/index.js";
export * from "./theseus/index.js";
export { CheckpointWriteError, NonFiniteLossError, TrainingError } from "./train/errors.js";
export type { TrainResult } from "./train/loop.js";
export type { StepMetrics } from "./train/metrics.js";
export type { CallbackInfo, DataSource, LoopOptions, NonFiniteAction, OptimizerSpec, SchedulerSpec } from "./train/options.js";
export { NO_DECAY_GROUP } from "./train/options.js";
export { ProtocolError, WorkerClosedError, WorkerCrashedError, WorkerError, WorkerStartError } from "./worker/errors.js";
export type {
  Batch,
  CheckpointInitReport,
  ConfigInitReport,
  CopyInitReport,
  CreateModelOptions,
  InitReport,
  LoadModelOptions,
  ModelDescription,
  ModelOutputs,
  ShapeMismatch,
  Task,
  TrainableReport,
} from "./worker/model-handle.js";
export { ModelHandle } from "./worker/model-handle.js";
export type { EncodeOptions, EncodeWordsOptions, LoadTokenizerOptions, Padding, TokenizerDescription } from "./worker/tokenizer-handle.js";
export { TokenizerHandle } from "./worker/tokenizer-handle.js";
export type { CallOptions, Device, WorkerInfo, WorkerOptions } from "./worker/worker.js";
export { Worker } from "./worker/worker.js";
