import type { Tensor } from "../tensor/tensor.js";
import type { WorkerLink } from "./worker-link.js";

export type Task = "sequence-classification" | "token-classification" | "question-answering" | "masked-lm" | "causal-lm" | "base";

/** A batch: a record of tensors (keyword arguments), an array (positional), or one tensor. */
export type Batch = Record<string, Tensor> | Tensor[] | Tensor;

/** Model outputs as returned by the worker: Hugging Face ModelOutput fields become keys; tuples become arrays. */
export type ModelOutputs = { [key: string]: Tensor | Tensor[] | ModelOutputs } & {
  logits?: Tensor;
  hidden_states?: Tensor[];
  attentions?: Tensor[];
};

export interface LoadModelOptions {
  /** A Hugging Face folder, a state dict (.safetensors/.pt/.bin), or a TorchScript file. */
  path?: string;
  task?: Task;
  /** HF config overrides (with a folder), or the HF config of a bare state dict (a dict with model_type, or a config.json path). */
  config?: Record<string, unknown> | string;
  /** A Python factory "file.py:fn" returning an nn.Module; `path`, if given, is then a state dict for it. */
  factory?: string;
  factoryArgs?: Record<string, unknown>;
  format?: "hf" | "safetensors" | "pt" | "torchscript" | "factory";
  /** `.pt`/`.bin` files load with torch.load(weights_only=True) unless this is false. Only for files you trust. */
  weightsOnly?: boolean;
  /**
   * A folder whose config.json has an `auto_map` (Python code shipped with the model) is refused unless this is true;
   * true lets transformers import and run that code in the worker. Only for folders whose code you trust.
   */
  trustRemoteCode?: boolean;
}

export interface CreateModelOptions {
  /** Hugging Face config keys; with `initFrom` they override the teacher's config. */
  config?: Record<string, unknown>;
  task?: Task;
  /** Copy embeddings, head and the layers in `layerMap` from this model. */
  initFrom?: ModelHandle;
  /** Student layer i is initialised from teacher layer layerMap[i]. Default: the first layers. */
  layerMap?: number[];
}

export interface ModelDescription {
  handle: string;
  className: string;
  isHuggingFace: boolean;
  config: Record<string, unknown> | null;
  numParameters: number;
  initReport?: unknown;
}

type Call = (op: string, args?: Record<string, unknown>) => Promise<unknown>;

/** A model living in the worker process. */
export interface TrainableReport {
  /** Names of the parameters the pattern matched. */
  matched: string[];
  /** Parameter elements that still train, and all of them. */
  trainableParameters: number;
  parameters: number;
}

export class ModelHandle {
  readonly id: string;
  readonly className: string;
  readonly isHuggingFace: boolean;
  readonly config: Record<string, unknown> | null;
  readonly initReport: unknown;
  private disposed = false;

  constructor(
    private readonly call: Call,
    description: ModelDescription,
    /** The worker this model lives in. */
    readonly worker: WorkerLink,
  ) {
    this.id = description.handle;
    this.className = description.className;
    this.isHuggingFace = description.isHuggingFace;
    this.config = description.config;
    this.initReport = description.initReport;
  }

  /** Runs the model in eval mode without gradients; `hidden`/`attention` ask HF models for those outputs. */
  async predict(batch: Batch, options: { hidden?: boolean; attention?: boolean } = {}): Promise<ModelOutputs> {
    return (await this.invoke("predict", {
      batch,
      hidden: options.hidden ?? false,
      attention: options.attention ?? false,
    })) as ModelOutputs;
  }

  /** TextBrewer's display_parameters table: LAYER NAME, #PARAMS, RATIO, MEM(MB). */
  async describe(options: { maxLevel?: number } = {}): Promise<string> {
    const r = (await this.invoke("describe", { maxLevel: options.maxLevel ?? null })) as { table: string };
    return r.table;
  }

  async numParameters(options: { trainableOnly?: boolean } = {}): Promise<number> {
    return (await this.invoke("num_parameters", { trainableOnly: options.trainableOnly ?? false })) as number;
  }

  /**
   * Sets requires_grad on every parameter whose name matches `pattern` (a Python regex, searched). Frozen parameters
   * get no gradient and no optimizer state: freezing the word embeddings of a small BERT (most of its parameters)
   * roughly halves a training step on CPU. Call it before `train()`; a pattern that matches nothing is an error.
   */
  async setTrainable(pattern: string, trainable: boolean): Promise<TrainableReport> {
    return (await this.invoke("set_trainable", { pattern, trainable })) as TrainableReport;
  }

  /** Writes a Hugging Face folder with safetensors (or a safetensors state dict for other modules), atomically. */
  async save(dir: string): Promise<string[]> {
    const r = (await this.invoke("save_model", { dir })) as { files: string[] };
    return r.files;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.invoke("dispose", {});
    this.disposed = true;
  }

  private invoke(op: string, args: Record<string, unknown>): Promise<unknown> {
    if (this.disposed) return Promise.reject(new Error(`model ${this.id} (${this.className}) was disposed`));
    return this.call(op, { ...args, model: this.id });
  }
}
