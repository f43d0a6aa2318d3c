/** Exporting a model for use outside the worker: a complete Hugging Face folder, and ONNX. */
import { z } from "zod";
import { defineOp } from "./define.js";
import { modelId, tensor, tokenizerId } from "./wire-types.js";

export const onnxExport = z.strictObject({
  path: z.string(),
  /** The graph's input names (the sample's keys). */
  inputs: z.array(z.string()),
  /** The graph's output, e.g. "logits". */
  output: z.string(),
  opset: z.int(),
  bytes: z.int().min(0),
  /** The largest absolute difference between onnxruntime's output and PyTorch's on the sample. */
  maxAbsDiff: z.number(),
});

export const exportOps = {
  export_model: defineOp(
    z.strictObject({
      model: modelId,
      dir: z.string().min(1),
      /** Its files go into the folder. */
      tokenizer: tokenizerId.nullable().default(null),
      /** The model card (README.md), rendered. */
      readme: z.string().nullable().default(null),
      /** Label names in logit order, for config.json's id2label/label2id. */
      labels: z.array(z.string()).nullable().default(null),
    }),
    z.strictObject({ files: z.array(z.string()) }),
  ),
  export_onnx: defineOp(
    z.strictObject({
      model: modelId,
      path: z.string().min(1),
      /** Checked by the exporter (9..20), which names the fix. */
      opset: z.int().default(17),
      dynamicAxes: z.union([z.boolean(), z.record(z.string(), z.record(z.string(), z.string()))]).default(true),
      sample: z.record(z.string(), tensor).nullable().default(null),
    }),
    onnxExport,
  ),
};
