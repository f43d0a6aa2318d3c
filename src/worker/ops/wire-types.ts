/**
 * Building blocks of the op catalogue for values that JSON alone does not describe: tensors (sent as raw frames,
 * `{"$t": i}` in the header), numbers that may be NaN or ±Infinity (`{"$f": …}` in the header), and results that
 * are absent. Each carries the JSON Schema of its wire form and the Python type it arrives as (PYTHON_TYPE), which
 * the generator of the worker's schema and types reads.
 */
import { z } from "zod";
import { Tensor } from "../../tensor/tensor.js";

/** JSON Schema annotation naming the Python type a value has in the worker (validators ignore unknown keywords). */
export const PYTHON_TYPE = "x-python-type";

const TENSOR_PLACEHOLDER = {
  type: "object",
  properties: { $t: { type: "integer", minimum: 0 } },
  required: ["$t"],
  additionalProperties: false,
};
const NON_FINITE_PLACEHOLDER = {
  type: "object",
  properties: { $f: { enum: ["NaN", "Infinity", "-Infinity"] } },
  required: ["$f"],
  additionalProperties: false,
};

/** A Tensor; in the worker a torch.Tensor. */
export const tensor = z.custom<Tensor>((v) => v instanceof Tensor, { error: "expected a Tensor" });

/** Any number, NaN and ±Infinity included (z.number() refuses them); in the worker a float. */
export const anyNumber = z.custom<number>((v) => typeof v === "number", { error: "expected a number" });

/** No result (the worker's handler returns None). */
export const nothing = z.undefined();

/** A model's handle in the worker ("m1"). */
export const modelId = z.string().min(1);
/** A tokenizer's handle in the worker ("t1"). */
export const tokenizerId = z.string().min(1);

/** A JSON object of free keys (HF configs, keyword arguments). */
export const jsonObject = z.record(z.string(), z.unknown());

/**
 * Tensors nested in records and arrays: a batch (a record of tensors, positional tensors, `{ teacher, student }`,
 * `teacherOutputs`), model outputs. Leaves may also be plain JSON values (model outputs hold a few).
 */
export type TensorTree = Tensor | number | string | boolean | null | TensorTree[] | { [key: string]: TensorTree };

function isTensorTree(v: unknown, depth = 0): v is TensorTree {
  if (v === null || typeof v === "number" || typeof v === "string" || typeof v === "boolean" || v instanceof Tensor) return true;
  if (typeof v !== "object" || depth > 32) return false;
  if (Array.isArray(v)) return v.every((x) => isTensorTree(x, depth + 1));
  if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) return false;
  for (const x of Object.values(v)) if (!isTensorTree(x, depth + 1)) return false;
  return true;
}

// A plain check rather than a recursive z.union: a batch is checked at every step, and this is ~20x cheaper.
export const tensorTree = z.custom<TensorTree>((v) => isTensorTree(v), {
  error: "expected a Tensor, or records and arrays of them (plain JSON values allowed)",
});

/** Applied by z.toJSONSchema: the wire form (and Python type) of the schemas above. */
export function wireOverride(ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }): void {
  const set = (schema: Record<string, unknown>, python: string): void => {
    for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
    Object.assign(ctx.jsonSchema, schema, { [PYTHON_TYPE]: python });
  };
  if (ctx.zodSchema === tensor) set(TENSOR_PLACEHOLDER, "torch.Tensor");
  else if (ctx.zodSchema === anyNumber) set({ anyOf: [{ type: "number" }, NON_FINITE_PLACEHOLDER] }, "float");
  else if (ctx.zodSchema === nothing) set({ type: "null" }, "None");
  else if (ctx.zodSchema === tensorTree) set({}, "Any");
}
