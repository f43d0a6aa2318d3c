/**
 * TheseusDistiller: BERT-of-Theseus (Xu et al., 2020), compression by progressive module replacement.
 *
 * The teacher (the predecessor) is copied in the worker and its layers are cut into groups, one per student layer (the
 * successor's). While training, each group is replaced by its successor layer with a probability that follows
 * `replacement` (constant, or the linear curriculum p = min(1, base + k·t), t = training forwards so far); the loss is
 * the task loss alone. The predecessor's layers are frozen; the successor layers and the shared embeddings and head
 * train. `predict` on `model` (eval mode) runs the successor alone, so checkpoint callbacks measure the student;
 * `extract()` gives it as a standalone Hugging Face model (save it with `save(dir)`, load it with `from_pretrained`).
 * The Python side is python_worker/textbrewer_worker/theseus.py.
 */
import type { z } from "zod";
import type { Adaptor } from "../adaptor/index.js";
import type { TrainingConfigInput } from "../config/training-config.js";
import { BasicTrainer } from "../distillers/basic-trainer.js";
import type { TrainResult } from "../train/loop.js";
import type { LoopOptions } from "../train/options.js";
import { ModelHandle } from "../worker/model-handle.js";
import type { replacementSchedule, theseusState } from "../worker/ops/theseus.js";

export type ReplacementSchedule = z.output<typeof replacementSchedule>;
export type TheseusState = z.output<typeof theseusState>;

export interface TheseusDistillerOptions {
  trainConfig?: TrainingConfigInput;
  /** The fine-tuned predecessor (a Hugging Face model); it is copied, so this handle is left as it is. */
  teacher: ModelHandle;
  /** The successor's number of layers. */
  numLayers: number;
  /** Teacher layers [first, last] (0-based) replaced by each successor layer, e.g. from suggestLayerMap's groups (minus 1). */
  groups?: [number, number][];
  /** Successor layer i starts as teacher layer layerMap[i] (default: the first numLayers layers). */
  layerMap?: number[];
  /** Default `{ type: "constant", rate: 0.5 }`. */
  replacement?: ReplacementSchedule;
  /** Seeds the replacement draws (default: trainConfig.seed, else 0). */
  seed?: number;
  /** What the loss is: default the model's own task loss, `(batch, out) => ({ losses: out.loss })`. */
  adaptor?: Adaptor;
}

const TASK_LOSS: Adaptor = (_batch, out) => ({ losses: out.loss });

export class TheseusDistiller {
  private constructor(
    /** The predecessor with its successor layers: train this; predict runs the successor alone. */
    readonly model: ModelHandle,
    /** Teacher layers [first, last] per successor layer. */
    readonly groups: [number, number][],
    /** The teacher layer each successor layer started as. */
    readonly layerMap: number[],
    private readonly trainer: BasicTrainer,
  ) {}

  /** Builds the compound model in the teacher's worker. */
  static async create(options: TheseusDistillerOptions): Promise<TheseusDistiller> {
    const { teacher } = options;
    const seed = options.seed ?? (options.trainConfig?.seed as number | undefined) ?? 0;
    const worker = teacher.worker;
    const reply = await worker.call("theseus_create", {
      teacher: teacher.id,
      numLayers: options.numLayers,
      groups: options.groups ?? null,
      layerMap: options.layerMap ?? null,
      replacement: options.replacement ?? { type: "constant", rate: 0.5 },
      seed,
    });
    const { groups, layerMap, ...description } = reply;
    const model = new ModelHandle(description, worker);
    const trainer = new BasicTrainer({ trainConfig: options.trainConfig ?? {}, model, adaptor: options.adaptor ?? TASK_LOSS });
    return new TheseusDistiller(model, groups as [number, number][], layerMap, trainer);
  }

  /** Trains on the task loss with the shared loop (checkpoints, resume, callbacks as every distiller). */
  train(options: LoopOptions): Promise<TrainResult> {
    return this.trainer.train(options);
  }

  /** The training forwards so far, the current replacement rate and the last draw (true: the group was replaced). */
  async state(): Promise<TheseusState> {
    return this.model.worker.call("theseus_state", { model: this.model.id });
  }

  /** The successor as a standalone Hugging Face model: its layers with the (trained) shared embeddings and head. */
  async extract(): Promise<ModelHandle> {
    const worker = this.model.worker;
    return new ModelHandle(await worker.call("theseus_extract", { model: this.model.id }), worker);
  }
}
