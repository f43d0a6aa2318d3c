export const VERSION = "0.1.0";
export { Tensor, bytesPerElement } from "./tensor/index.js";
export type { DType, NestedArray, TensorStorage } from "./tensor/index.js";
export { Worker } from "./worker/worker.js";
export type { WorkerOptions, WorkerInfo, Device, CallOptions } from "./worker/worker.js";
export { ModelHandle } from "./worker/model-handle.js";
export type { Batch, ModelOutputs, LoadModelOptions, CreateModelOptions, Task } from "./worker/model-handle.js";
export { WorkerError, WorkerCrashedError, WorkerStartError, WorkerClosedError } from "./worker/errors.js";
export { setupPythonEnv, doctor, formatDoctor, resolvePython, PythonEnvError } from "./env/python-env.js";
