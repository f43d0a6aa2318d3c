/** Ops on models in the worker: load, create, predict, describe, freeze, save, dispose. */
import { z } from "zod";
import type { Tensor } from "../../tensor/tensor.js";
import { defineOp } from "./define.js";
import { jsonObject, modelId, nothing, tensorTree } from "./wire-types.js";

export const TASKS = ["sequence-classification", "token-classification", "question-answering", "masked-lm", "causal-lm", "base"] as const;
export const task = z.enum(TASKS);

export const MODEL_FORMATS = ["hf", "safetensors", "pt", "torchscript", "factory"] as const;

const shapeMismatch = z.strictObject({
  name: z.string(),
  checkpoint: z.array(z.int()).nullable(),
  model: z.array(z.int()).nullable(),
});

const initReportBase = {
  task: task.nullable(),
  newlyInitialized: z.array(z.string()),
  missing: z.array(z.string()),
  unexpected: z.array(z.string()),
  mismatched: z.array(shapeMismatch),
};

export const checkpointInitReport = z.strictObject({ source: z.literal("checkpoint"), path: z.string(), ...initReportBase });
export const copyInitReport = z.strictObject({
  source: z.literal("initFrom"),
  copied: z.record(z.string(), z.string()),
  layerPrefix: z.string().nullable(),
  layerMap: z.array(z.int()).nullable(),
  ...initReportBase,
});
export const configInitReport = z.strictObject({ source: z.literal("config"), ...initReportBase });
export const initReport = z.discriminatedUnion("source", [checkpointInitReport, copyInitReport, configInitReport]);

const handleDescription = {
  handle: modelId,
  className: z.string(),
  isHuggingFace: z.boolean(),
  config: jsonObject.nullable(),
  numParameters: z.int(),
};
/** What load_model and create_model return. */
export const modelDescription = z.strictObject({ ...handleDescription, initReport: initReport.nullable() });

export const loadModelArgs = z.strictObject({
  path: z.string().min(1).optional(),
  task: task.optional(),
  config: z.union([jsonObject, z.string()]).optional(),
  factory: z.string().min(1).optional(),
  factoryArgs: jsonObject.optional(),
  format: z.enum(MODEL_FORMATS).optional(),
  weightsOnly: z.boolean().default(true),
  trustRemoteCode: z.boolean().default(false),
});

export const createModelArgs = z.strictObject({
  config: jsonObject.default({}),
  task: task.optional(),
  initFrom: modelId.nullable().default(null),
  layerMap: z.array(z.int().min(0)).nullable().default(null),
});

/** Model outputs as returned by the worker: Hugging Face ModelOutput fields become keys; tuples become arrays. */
export type ModelOutputs = { [key: string]: Tensor | Tensor[] | ModelOutputs } & {
  logits?: Tensor;
  hidden_states?: Tensor[];
  attentions?: Tensor[];
};

/**
 * Checked as a tree of tensors and typed as ModelOutputs for the common case, a Hugging Face model; a module that
 * returns a bare tensor or a tuple gives that tensor or array.
 */
export const modelOutputs = z.custom<ModelOutputs>((v) => tensorTree.safeParse(v).success, {
  error: "expected model outputs: tensors in records and arrays",
});

export const trainableReport = z.strictObject({
  matched: z.array(z.string()),
  trainableParameters: z.int(),
  parameters: z.int(),
});

export const modelOps = {
  load_model: defineOp(loadModelArgs, modelDescription),
  create_model: defineOp(createModelArgs, modelDescription),
  predict: defineOp(
    z.strictObject({ model: modelId, batch: tensorTree, hidden: z.boolean().default(false), attention: z.boolean().default(false) }),
    modelOutputs,
  ),
  describe: defineOp(z.strictObject({ model: modelId, maxLevel: z.int().nullable().default(null) }), z.strictObject({ table: z.string() })),
  num_parameters: defineOp(z.strictObject({ model: modelId, trainableOnly: z.boolean().default(false) }), z.int()),
  /** Sets requires_grad on every parameter whose name matches the regex `pattern`. */
  set_trainable: defineOp(z.strictObject({ model: modelId, pattern: z.string(), trainable: z.boolean() }), trainableReport),
  save_model: defineOp(z.strictObject({ model: modelId, dir: z.string().min(1) }), z.strictObject({ files: z.array(z.string()) })),
  dispose: defineOp(z.strictObject({ model: modelId }), nothing),
};
