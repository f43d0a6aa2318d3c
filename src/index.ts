/**
 * The core: the worker and its handles, tensors, configs, adaptors, distillers, presets, the teacher cache and the
 * errors. Extras have their own entry points: `textbrewer-ts/data` (readers, splits, batching, metrics,
 * augmentation), `textbrewer-ts/report` (the HTML report, eval files) and `textbrewer-ts/interop` (checkpoints and
 * Python objects without a worker, the Python environment). A test keeps this list at 60 names or fewer.
 */
export const VERSION = "0.1.0";
export type { AdaptorFn, AdaptorSpec } from "./adaptor/index.js";
export { AdaptorError } from "./adaptor/index.js";
export { DistillCache } from "./cache/distill-cache.js";
export { CacheMismatchError, CacheWriteError, TeacherCache } from "./cache/index.js";
export type { DistillationConfigInput, IntermediateMatchInput, TrainingConfigInput } from "./config/index.js";
export { ConfigError, DistillationConfig, TrainingConfig } from "./config/index.js";
export { BasicDistiller } from "./distillers/basic-distiller.js";
export { BasicTrainer } from "./distillers/basic-trainer.js";
export { EMDDistiller } from "./distillers/emd-distiller.js";
export type { DistillerOptions } from "./distillers/general-distiller.js";
export { GeneralDistiller } from "./distillers/general-distiller.js";
export { MultiTaskDistiller } from "./distillers/multi-task-distiller.js";
export { MultiTeacherDistiller } from "./distillers/multi-teacher-distiller.js";
export type { TrainOptions } from "./distillers/train-options.js";
export { PythonEnvError } from "./env/python-env.js";
export { registerLoss } from "./losses/registry.js";
export { exportCheckpoint } from "./models/export-checkpoint.js";
export type { PackagedModel, PackagedModelSpec } from "./models/packaged.js";
export { findPackagedModel } from "./models/packaged.js";
export type { PresetName, RecipeName } from "./presets/index.js";
export { presets, recipes } from "./presets/index.js";
export type { DType } from "./tensor/index.js";
export { Tensor } from "./tensor/index.js";
export type { TheseusDistillerOptions } from "./theseus/theseus-distiller.js";
export { TheseusDistiller } from "./theseus/theseus-distiller.js";
export { CheckpointWriteError, NonFiniteLossError, TrainingError } from "./train/errors.js";
export type { TrainResult } from "./train/loop.js";
export type { StepMetrics } from "./train/metrics.js";
export type { LoopOptions } from "./train/options.js";
export { NO_DECAY_GROUP } from "./train/options.js";
export { ProtocolError, WorkerClosedError, WorkerCrashedError, WorkerError, WorkerStartError } from "./worker/errors.js";
export type {
  Batch,
  CreateModelOptions,
  ExportOnnxOptions,
  InitReport,
  LoadModelOptions,
  ModelOutputs,
  SaveOptions,
} from "./worker/model-handle.js";
export { ModelHandle } from "./worker/model-handle.js";
export type { LoadTokenizerOptions } from "./worker/tokenizer-handle.js";
export { TokenizerHandle } from "./worker/tokenizer-handle.js";
export type { WorkerOptions } from "./worker/worker.js";
export { Worker } from "./worker/worker.js";
