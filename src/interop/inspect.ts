import { withPython, type WithPythonOptions } from "./pythonia.js";

export interface TensorInfo {
  shape: number[];
  dtype: string;
}

export interface CheckpointInfo {
  path: string;
  kind: "hf-folder" | "safetensors" | "torch" | "unknown";
  files?: string[];
  config?: Record<string, unknown>;
  modelType?: string;
  architectures?: string[];
  weightsFile?: string;
  numTensors?: number;
  numParameters?: number;
  dtypes?: Record<string, number>;
  tensors?: Record<string, TensorInfo>;
  sizeBytes?: number;
}

/** Describes a checkpoint (config, tensors, parameter count) without a training worker; .pt files load weights-only. */
export async function inspectCheckpoint(path: string, options: WithPythonOptions = {}): Promise<CheckpointInfo> {
  return withPython(async (python) => {
    const mod = await python("textbrewer_worker.inspect_checkpoint");
    const text = (await mod.describe_checkpoint(path)) as string;
    return JSON.parse(text) as CheckpointInfo;
  }, options);
}
