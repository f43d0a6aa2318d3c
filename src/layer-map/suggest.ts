/**
 * suggestLayerMap: which teacher layers a student should start from and match, measured rather than guessed.
 * The worker runs the models on a sample (op `layer_similarity`); the rule is in select.ts.
 */
import type { z } from "zod";
import type { IntermediateMatchInput } from "../config/distillation-config.js";
import { Tensor } from "../tensor/tensor.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import type { layerSimilarityResult } from "../worker/ops/layer-map.js";
import { type LayerSelection, type SimilarityMatrices, selectLayers } from "./select.js";

export type LayerSimilarity = z.output<typeof layerSimilarityResult>;

export interface SuggestLayerMapOptions {
  teacher: ModelHandle;
  /** A student of `numLayers` layers (e.g. already initialised): its similarity to the teacher chooses the matches. */
  student?: ModelHandle;
  /** Record batches with input_ids and attention_mask (labels are ignored); a few hundred sentences are plenty. */
  data: readonly Batch[];
  /** The student's number of layers. */
  numLayers: number;
  /** Weight of attention-map similarity against CKA in the cut (default 0.5; 0 = CKA alone). */
  attentionWeight?: number;
  /** Measure attention maps too (default true; needs eager attention, which is switched on for the run). */
  attention?: boolean;
}

export interface LayerMapSuggestion extends LayerSelection {
  /** hidden_mse on each pair (with a linear projection when the widths differ): pass as DistillationConfig.intermediateMatches. */
  intermediateMatches: IntermediateMatchInput[];
  similarity: LayerSimilarity;
  numLayers: number;
  teacherLayers: number;
}

function hiddenSize(model: ModelHandle): number | undefined {
  const size = model.config?.hidden_size ?? model.config?.d_model ?? model.config?.dim;
  return typeof size === "number" ? size : undefined;
}

/** Runs the teacher (and the student) on `data` in the worker and applies the rule of select.ts. */
export async function suggestLayerMap(options: SuggestLayerMapOptions): Promise<LayerMapSuggestion> {
  const { teacher, student, data, numLayers } = options;
  if (!Array.isArray(data) || data.length === 0) throw new Error("data: give at least one record batch with input_ids and attention_mask");
  if (student && student.worker !== teacher.worker) throw new Error("student: must be loaded in the teacher's Worker");
  if (!data.every((b) => !(b instanceof Tensor) && !Array.isArray(b)))
    throw new Error("data: each batch must be a record of tensors (input_ids, attention_mask)");
  const similarity = await teacher.worker.call("layer_similarity", {
    teacher: teacher.id,
    student: student?.id ?? null,
    batches: data as Record<string, Tensor>[],
    attention: options.attention ?? true,
  });
  if (student && similarity.layersS !== numLayers + 1) {
    throw new Error(
      `numLayers: ${numLayers} but the student has ${(similarity.layersS ?? 1) - 1} layers; pass numLayers: ${(similarity.layersS ?? 1) - 1}`,
    );
  }
  const matrices: SimilarityMatrices = {
    teacherCka: similarity.teacherCka,
    ...(similarity.teacherAttention ? { teacherAttention: similarity.teacherAttention } : {}),
    ...(similarity.crossCka ? { crossCka: similarity.crossCka } : {}),
  };
  const selection = selectLayers(matrices, numLayers, options.attentionWeight ?? 0.5);
  const widthT = hiddenSize(teacher);
  const widthS = student ? hiddenSize(student) : widthT;
  const proj =
    widthT !== undefined && widthS !== undefined && widthS !== widthT
      ? { proj: ["linear", widthS, widthT] as ["linear", number, number] }
      : {};
  const intermediateMatches: IntermediateMatchInput[] = selection.pairs.map(([s, t]) => ({
    layerT: t,
    layerS: s,
    feature: "hidden",
    loss: "hidden_mse",
    weight: 1,
    ...proj,
  }));
  return { ...selection, intermediateMatches, similarity, numLayers, teacherLayers: similarity.layersT - 1 };
}
