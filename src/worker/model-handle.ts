import type { z } from "zod";
import { addExtras } from "../env/python-env.js";
import { checkSaveOptions, configLabels, type ModelCard, renderModelCard } from "../models/card.js";
import type { Tensor } from "../tensor/tensor.js";
import type { onnxExport } from "./ops/export.js";
import type { OpArgs } from "./ops/index.js";
import type {
  checkpointInitReport,
  configInitReport,
  copyInitReport,
  initReport,
  ModelOutputs,
  modelDescription,
  task,
  trainableReport,
} from "./ops/models.js";
import type { TokenizerHandle } from "./tokenizer-handle.js";
import type { WorkerLink } from "./worker-link.js";

export type { ModelOutputs } from "./ops/models.js";

export type Task = z.output<typeof task>;

/**
 * Training data whose models read different inputs: each model its own half, e.g. the same texts encoded by the
 * teacher's and by the student's tokenizer (the ULD loss distils across tokenizers from such batches).
 */
export type SplitBatch = {
  teacher: Record<string, Tensor>;
  student: Record<string, Tensor>;
};

/** A batch: a record of tensors (keyword arguments), an array (positional), one tensor, or a split batch (training). */
export type Batch = Record<string, Tensor> | Tensor[] | Tensor | SplitBatch;

export interface LoadModelOptions {
  /**
   * A Hugging Face folder, a state dict (.safetensors/.pt/.bin), or a TorchScript file. A path that does not exist but
   * looks like a Hub id (`org/name`) is looked up in the local Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME/hub` or
   * `~/.cache/huggingface/hub`, the snapshot that `refs/main` names); nothing is ever downloaded.
   */
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
  /**
   * Weights the checkpoint does not provide (a new head, a resized one) get random values and one console warning names
   * them (also listed in `initReport.newlyInitialized`). Pass false to silence the warning, e.g. when you will train
   * the new head anyway.
   */
  warnNewWeights?: boolean;
}

export interface CreateModelOptions {
  /** Hugging Face config keys; with `initFrom` they override the teacher's config. */
  config?: Record<string, unknown>;
  task?: Task;
  /** Copy embeddings, head and the layers in `layerMap` from this model. */
  initFrom?: ModelHandle;
  /** Student layer i is initialised from teacher layer layerMap[i]. Default: the first layers. */
  layerMap?: number[];
  /** With `initFrom`: false silences the warning naming the weights that were not copied (see LoadModelOptions). */
  warnNewWeights?: boolean;
}

/** A weight whose shape differs between where it came from (checkpoint or teacher) and the model: it was re-initialised. */
export type ShapeMismatch = CheckpointInitReport["mismatched"][number];

/**
 * loadModel of a Hugging Face folder or a state dict (a strict load: its lists are empty). `path`: the folder or file
 * the weights came from (for a Hub id, its snapshot folder in the cache). `newlyInitialized`: parameter and buffer names
 * holding fresh random values (missing, or re-initialised for a shape), in model order; `missing`: names the model has
 * and its source lacked; `unexpected`: names in the source that the model does not use; `mismatched`: shapes that differ
 * (`checkpoint` null when it cannot be read cheaply, a `pytorch_model.bin`).
 */
export type CheckpointInitReport = z.output<typeof checkpointInitReport>;

/**
 * createModel with initFrom: `copied` maps each student name to the teacher name it was copied from; `layerPrefix` is the
 * stack of layers mapped by layerMap (e.g. "bert.encoder.layer"), null when none was found.
 */
export type CopyInitReport = z.output<typeof copyInitReport>;

/** createModel from a config alone: every weight is new. */
export type ConfigInitReport = z.output<typeof configInitReport>;

/**
 * How a model's weights were filled. null for a TorchScript file, a pickled module or a factory without weights, where
 * nothing is matched by name.
 */
export type InitReport = z.output<typeof initReport>;

const LISTED_NEW_WEIGHTS = 8;

/**
 * The one-line warning for weights a load or initFrom left at random values (null when there are none, or for a model
 * built from a config, which is random by request).
 */
export function newWeightsWarning(report: InitReport | null, className: string, from: string): string | null {
  if (report === null || report.source === "config" || report.newlyInitialized.length === 0) return null;
  const names = report.newlyInitialized;
  const more = names.length - LISTED_NEW_WEIGHTS;
  const listed = names.slice(0, LISTED_NEW_WEIGHTS).join(", ") + (more > 0 ? ` and ${more} more (initReport.newlyInitialized)` : "");
  const source = report.source === "checkpoint" ? "the checkpoint" : "the initFrom model";
  return (
    `textbrewer-ts: ${className} from ${from}: newly initialised, not in ${source}: ${listed}. ` +
    "They hold random values until trained (worker.seed(n) before loading makes them reproducible); " +
    "pass warnNewWeights: false to silence this"
  );
}

/** Prints newWeightsWarning with console.warn unless `warn` is false; returns the model. */
export function warnOfNewWeights(model: ModelHandle, from: string, warn: boolean | undefined): ModelHandle {
  const warning = warn === false ? null : newWeightsWarning(model.initReport, model.className, from);
  if (warning !== null) console.warn(warning);
  return model;
}

/** loadModel for a worker or a group: `send` runs load_model with the op's args; then the new-weights warning. */
export async function loadModelWith(
  options: LoadModelOptions,
  send: (args: OpArgs<"load_model">) => Promise<ModelHandle>,
): Promise<ModelHandle> {
  const { warnNewWeights, ...args } = options;
  return warnOfNewWeights(await send(args), `'${args.path}'`, warnNewWeights);
}

/** createModel for a worker or a group: `send` runs create_model with the op's args; then the new-weights warning. */
export async function createModelWith(
  options: CreateModelOptions,
  send: (args: OpArgs<"create_model">) => Promise<ModelHandle>,
): Promise<ModelHandle> {
  const { initFrom, warnNewWeights, ...rest } = options;
  return warnOfNewWeights(await send({ ...rest, initFrom: initFrom?.id ?? null }), `initFrom ${initFrom?.className}`, warnNewWeights);
}

/** What the worker says of a model it loaded or created. */
export type ModelDescription = z.output<typeof modelDescription>;

/** What setTrainable changed: the names the pattern matched, the parameter elements that still train, and all of them. */
export type TrainableReport = z.output<typeof trainableReport>;

export interface ExportOnnxOptions {
  /** The ONNX opset (default 17). */
  opset?: number;
  /**
   * true (default): batch and sequence length are free (axes named "batch" and "sequence"); false: the sample's shapes
   * are fixed; or torch.onnx's own map, e.g. `{ input_ids: { 0: "batch" } }`.
   */
  dynamicAxes?: boolean | Record<string, Record<number, string>>;
  /** The inputs traced and checked (their keys become the graph's input names); default: token ids and a mask. */
  sample?: Record<string, Tensor>;
}

/** What exportOnnx wrote and how closely the file reproduces PyTorch on the sample. */
export type OnnxExport = z.output<typeof onnxExport>;

/** What `save(dir, options)` adds to the weights and config, so that from_pretrained and pipeline() load the folder as is. */
export interface SaveOptions {
  /** Its files (tokenizer.json, tokenizer_config.json, vocab...) go into the folder. It must live in the same worker. */
  tokenizer?: TokenizerHandle;
  /** The model card, README.md: its sections (teacher, recipe, metrics, data), or the Markdown itself. */
  card?: ModelCard | string;
  /** Label names in logit order, written into config.json as id2label/label2id (one per label). */
  labels?: string[];
}

/** A model living in the worker process. */
export class ModelHandle {
  readonly id: string;
  readonly className: string;
  readonly isHuggingFace: boolean;
  readonly config: Record<string, unknown> | null;
  /** How the weights were filled (see InitReport): for loadModel and createModel; null where nothing was matched. */
  readonly initReport: InitReport | null;
  private disposed = false;

  constructor(
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
    return this.worker.call("predict", { model: this.live(), batch, hidden: options.hidden, attention: options.attention });
  }

  /** TextBrewer's display_parameters table: LAYER NAME, #PARAMS, RATIO, MEM(MB). */
  async describe(options: { maxLevel?: number } = {}): Promise<string> {
    return (await this.worker.call("describe", { model: this.live(), maxLevel: options.maxLevel })).table;
  }

  async numParameters(options: { trainableOnly?: boolean } = {}): Promise<number> {
    return this.worker.call("num_parameters", { model: this.live(), trainableOnly: options.trainableOnly });
  }

  /**
   * Sets requires_grad on every parameter whose name matches `pattern` (a Python regex, searched). Frozen parameters
   * get no gradient and no optimizer state: freezing the word embeddings of a small BERT (most of its parameters)
   * roughly halves a training step on CPU. Call it before `train()`; a pattern that matches nothing is an error.
   */
  async setTrainable(pattern: string, trainable: boolean): Promise<TrainableReport> {
    return this.worker.call("set_trainable", { model: this.live(), pattern, trainable });
  }

  /**
   * Writes a Hugging Face folder with safetensors (or a safetensors state dict for other modules), atomically. With
   * options (Hugging Face models only), the folder is complete: the tokenizer's files, a model card (README.md) and
   * label names in config.json, so that `from_pretrained` and `pipeline()` load it as is.
   */
  async save(dir: string, options?: SaveOptions): Promise<string[]> {
    if (options === undefined) {
      return (await this.worker.call("save_model", { model: this.live(), dir })).files;
    }
    const o = checkSaveOptions(options);
    if (options.tokenizer !== undefined && options.tokenizer.worker !== this.worker) {
      throw new Error(`tokenizer: ${options.tokenizer.id} lives in another worker than model ${this.id}; load it in this model's worker`);
    }
    const labels = o.labels ?? null;
    const readme =
      o.card === undefined
        ? null
        : typeof o.card === "string"
          ? o.card
          : renderModelCard(o.card, {
              className: this.className,
              config: this.config,
              numParameters: await this.numParameters(),
              labels: labels ?? configLabels(this.config),
            });
    const r = await this.worker.call("export_model", { model: this.live(), dir, tokenizer: o.tokenizer?.id ?? null, readme, labels });
    return r.files;
  }

  /**
   * Exports the model to an ONNX file (torch.onnx.export, written atomically), runs the file with onnxruntime on the
   * sample and reports the largest difference from PyTorch. The worker needs the `onnx` extra (onnx, onnxruntime): the
   * managed environment adds it on first use.
   */
  async exportOnnx(path: string, options: ExportOnnxOptions = {}): Promise<OnnxExport> {
    await addExtras(["onnx"]);
    return this.worker.call("export_onnx", {
      model: this.live(),
      path,
      opset: options.opset ?? 17,
      dynamicAxes: options.dynamicAxes ?? true,
      sample: options.sample ?? null,
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.worker.call("dispose", { model: this.live() });
    this.disposed = true;
  }

  /** The model's handle in the worker, for a request; throws once the model is disposed. */
  private live(): string {
    if (this.disposed) throw new Error(`model ${this.id} (${this.className}) was disposed`);
    return this.id;
  }
}
