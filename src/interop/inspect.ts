import { CheckpointInspectError, checkCheckpointFiles, checkpointModelDir } from "./file-check.js";
import { type WithPythonOptions, withPython } from "./pythonia.js";

export { CheckpointInspectError } from "./file-check.js";

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

/**
 * Describes a checkpoint (config, tensors, parameter count) without a training worker; .pt files load weights-only.
 * A missing or unreadable checkpoint rejects with CheckpointInspectError (one line: the file and the cause); the
 * checks that need no Python run before the interpreter starts.
 */
export async function inspectCheckpoint(checkpoint: string, options: WithPythonOptions = {}): Promise<CheckpointInfo> {
  const path = checkpointModelDir(checkpoint);
  checkCheckpointFiles(path);
  try {
    return await withPython(async (python) => {
      const mod = await python("textbrewer_worker.inspect_checkpoint");
      return JSON.parse((await mod.describe_checkpoint(path)) as string) as CheckpointInfo;
    }, options);
  } catch (error) {
    // withPython leaves the Python error's last line as the message
    const line = /CheckpointInspectError: (?:path: )?(.+)$/.exec(error instanceof Error ? error.message : "");
    if (line) throw new CheckpointInspectError(path, line[1]!.trim());
    throw error;
  }
}
