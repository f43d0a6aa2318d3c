/**
 * Adaptor specs: the JSON form of an adaptor that the worker applies to a batch and the model's outputs.
 *
 * A `select` spec maps adaptor keys to selectors. A selector is a path from the model outputs (`out`) or from
 * the batch (`batch`): a string step reads an attribute or a mapping key, a number step indexes (negative counts
 * from the end) and a slice step slices a sequence as Python does. `{ list }` builds a list of selections.
 * A `python` spec names a Python function `file.py:fn` called as `fn(batch, outputs)` in the worker.
 */
import { z } from "zod";

/** TextBrewer's adaptor keys, spelled exactly as TextBrewer spells them. */
export const ADAPTOR_KEYS = ["logits", "logits_mask", "labels", "losses", "hidden", "attention", "inputs_mask"] as const;
export type AdaptorKey = (typeof ADAPTOR_KEYS)[number];

export type SliceStep = { slice: [number | null, number | null, number | null] };
export type PathStep = string | number | SliceStep;
export type PathSelector = { from: "out" | "batch"; path: PathStep[] };
export type ListSelector = { list: Selector[] };
export type Selector = PathSelector | ListSelector;

export type SelectAdaptorSpec = { kind: "select"; keys: Partial<Record<AdaptorKey, Selector>> };
export type PythonAdaptorSpec = { kind: "python"; ref: string };
export type AdaptorSpec = SelectAdaptorSpec | PythonAdaptorSpec;

/** `path/to/file.py:function_name`; the last ':' separates the function, so Windows drive letters work. */
export const PYTHON_REF = /^(.+\.py):([A-Za-z_][A-Za-z0-9_]*)$/;

const sliceBound = z.int().nullable();

export const sliceStepSchema = z.strictObject({
  slice: z.tuple([sliceBound, sliceBound, sliceBound.refine((s) => s !== 0, { error: "slice step cannot be zero" })]),
});

export const pathStepSchema = z.union([z.string().min(1), z.int(), sliceStepSchema], {
  error: "expected a path step: a name, an integer index or { slice: [start, stop, step] }",
});

export const selectorSchema: z.ZodType<Selector> = z.lazy(() =>
  z.union(
    [z.strictObject({ from: z.enum(["out", "batch"]), path: z.array(pathStepSchema) }), z.strictObject({ list: z.array(selectorSchema) })],
    { error: 'expected a selector: { from: "out" | "batch", path: [...] } or { list: [...] }' },
  ),
);

const selectorKeys = Object.fromEntries(ADAPTOR_KEYS.map((k) => [k, selectorSchema.optional()])) as Record<
  AdaptorKey,
  z.ZodOptional<typeof selectorSchema>
>;

export const selectAdaptorSpecSchema = z.strictObject({
  kind: z.literal("select"),
  keys: z.strictObject(selectorKeys).refine((keys) => Object.values(keys).some((v) => v !== undefined), {
    error: "an adaptor must select at least one key",
  }),
});

export const pythonAdaptorSpecSchema = z.strictObject({
  kind: z.literal("python"),
  ref: z.string().regex(PYTHON_REF, { error: 'expected "path/to/file.py:function"' }),
});

export const adaptorSpecSchema = z.discriminatedUnion("kind", [selectAdaptorSpecSchema, pythonAdaptorSpecSchema]);

/** A selector as TypeScript would write it, e.g. `out.hidden_states.slice(1, 4)` or `[out.start, out.end]`. */
export function describeSelector(selector: Selector): string {
  if ("list" in selector) return `[${selector.list.map(describeSelector).join(", ")}]`;
  return selector.from + selector.path.map(describeStep).join("");
}

export function describeStep(step: PathStep): string {
  if (typeof step === "number") return step < 0 ? `.at(${step})` : `[${step}]`;
  if (typeof step === "string") return /^[A-Za-z_$][\w$]*$/.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`;
  const [start, stop, stride] = step.slice;
  const args = [start, stop, ...(stride === null ? [] : [stride])].map((v) => (v === null ? "undefined" : String(v)));
  while (args.length > 0 && args[args.length - 1] === "undefined") args.pop();
  return `.slice(${args.join(", ")})`;
}
