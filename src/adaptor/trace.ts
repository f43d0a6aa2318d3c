/**
 * Turns an adaptor into an AdaptorSpec.
 *
 * A TypeScript adaptor `(batch, out) => ({ logits: out.logits, ... })` is called once, at configuration time,
 * with two recording placeholders. What it reads becomes selector paths; what it returns becomes the spec that
 * the worker applies to real tensors every step. Anything that would compute on the placeholders (arithmetic,
 * comparisons, string conversion, method calls, `in`, iteration, spreading) throws an AdaptorError instead.
 */
import { formatZodError, showValue, suggestName } from "../config/errors.js";
import {
  ADAPTOR_KEYS,
  type AdaptorKey,
  type AdaptorSpec,
  adaptorSpecSchema,
  describeSelector,
  type PathSelector,
  type PathStep,
  PYTHON_REF,
  type Selector,
} from "./spec.js";

export class AdaptorError extends Error {
  override readonly name = "AdaptorError";

  constructor(
    message: string,
    /** The adaptor key concerned, when known. */
    readonly key?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The placeholders stand for whatever the model returns and whatever the batch holds, so user code must be
 * able to read any path from them; `any` is what lets `out.hidden_states.slice(1)` type-check.
 */
// biome-ignore lint/suspicious/noExplicitAny: the placeholders must accept any path, as the comment above says
export type Traced = any;
/** Adaptor keys are suggested by the editor; any other key is reported when the adaptor is traced. */
export type AdaptorResult = { readonly [K in AdaptorKey]?: unknown } & { readonly [key: string]: unknown };
export type AdaptorFn = (batch: Traced, out: Traced) => AdaptorResult;
export type PythonAdaptorRef = { python: string };
export type Adaptor = AdaptorFn | AdaptorSpec | PythonAdaptorRef;

const ALTERNATIVES =
  'Compute it instead with a hand-written spec ({ kind: "select", keys: { ... } }) or with a Python adaptor, ' +
  'which receives the real tensors: { python: "my_adaptors.py:adaptor" }.';

const recordings = new WeakMap<object, PathSelector>();

/** Converts any accepted adaptor form into a validated AdaptorSpec. */
export function toAdaptorSpec(adaptor: Adaptor): AdaptorSpec {
  if (typeof adaptor === "function") return traceAdaptor(adaptor);
  if (adaptor !== null && typeof adaptor === "object") {
    if ("python" in adaptor) return pythonSpec(adaptor);
    if ("kind" in adaptor) return validateSpec(adaptor);
  }
  throw new AdaptorError(
    `an adaptor is a function (batch, out) => ({ logits: out.logits, ... }), an AdaptorSpec ` +
      `({ kind: "select", keys } or { kind: "python", ref }) or { python: "file.py:function" }; ` +
      `received ${showValue(adaptor)}`,
  );
}

function pythonSpec(ref: PythonAdaptorRef): AdaptorSpec {
  const extra = Object.keys(ref).filter((k) => k !== "python");
  if (extra.length > 0) {
    throw new AdaptorError(`a Python adaptor is { python: "file.py:function" } alone; unexpected key(s) ${extra.join(", ")}`);
  }
  if (typeof ref.python !== "string" || !PYTHON_REF.test(ref.python)) {
    throw new AdaptorError(`a Python adaptor reference must look like "my_adaptors.py:adaptor"; received ${showValue(ref.python)}`);
  }
  return { kind: "python", ref: ref.python };
}

function validateSpec(spec: unknown): AdaptorSpec {
  const parsed = adaptorSpecSchema.safeParse(spec, { reportInput: true });
  if (!parsed.success) {
    throw new AdaptorError(formatZodError("AdaptorSpec", parsed.error, { schema: adaptorSpecSchema, input: spec }));
  }
  return parsed.data;
}

function traceAdaptor(fn: AdaptorFn): AdaptorSpec {
  let result: unknown;
  try {
    result = fn(placeholder({ from: "batch", path: [] }), placeholder({ from: "out", path: [] }));
  } catch (e) {
    if (e instanceof AdaptorError) throw e;
    throw new AdaptorError(
      `the adaptor threw while it was being traced (${(e as Error)?.message ?? String(e)}). ` +
        `Adaptors are called once at configuration time with placeholders and may only select outputs. ${ALTERNATIVES}`,
      undefined,
      { cause: e },
    );
  }
  if (isObjectLike(result) && recordings.has(result)) {
    const returned = recordings.get(result);
    throw new AdaptorError(
      `the adaptor returned ${returned ? describeSelector(returned) : "a placeholder"} itself; return an object of ` +
        `adaptor keys instead, e.g. { logits: out.logits, hidden: out.hidden_states }`,
    );
  }
  if (isThenable(result)) {
    throw new AdaptorError("the adaptor returned a Promise; adaptors must be synchronous functions that select outputs");
  }
  if (result === null || typeof result !== "object" || Array.isArray(result)) {
    throw new AdaptorError(`the adaptor must return an object of adaptor keys (${ADAPTOR_KEYS.join(", ")}); received ${showValue(result)}`);
  }

  const entries = Object.entries(result).filter(([, v]) => v !== undefined);
  checkKeys(entries.map(([k]) => k));
  if (entries.length === 0) {
    throw new AdaptorError(`the adaptor selects nothing; return at least one of ${ADAPTOR_KEYS.join(", ")}`);
  }
  const keys: Partial<Record<AdaptorKey, Selector>> = {};
  for (const [key, value] of entries) keys[key as AdaptorKey] = toSelector(value, key, key);
  return validateSpec({ kind: "select", keys });
}

function checkKeys(keys: readonly string[]): void {
  const allowed: readonly string[] = ADAPTOR_KEYS;
  const unknown = keys.filter((k) => !allowed.includes(k));
  if (unknown.length === 0) return;
  const lines = unknown.map((k) => {
    const guess = suggestName(k, ADAPTOR_KEYS);
    return `'${k}'${guess === undefined ? "" : ` (did you mean ${guess}?)`}`;
  });
  throw new AdaptorError(
    `unknown adaptor key ${lines.join(", ")}; allowed keys: ${ADAPTOR_KEYS.join(", ")}. Keys are TextBrewer's snake_case names.`,
    unknown[0],
  );
}

function toSelector(value: unknown, key: string, where: string): Selector {
  const recorded = isObjectLike(value) ? recordings.get(value) : undefined;
  if (recorded) return { from: recorded.from, path: [...recorded.path] };
  if (Array.isArray(value)) return { list: value.map((v: unknown, i) => toSelector(v, key, `${where}[${i}]`)) };
  throw new AdaptorError(
    `adaptor key '${key}': ${where} is ${showValue(value)}, not something read from batch or out. ` +
      `Adaptors only select outputs (or lists of them). ${ALTERNATIVES}`,
    key,
  );
}

function isObjectLike(value: unknown): value is object {
  return value !== null && (typeof value === "object" || typeof value === "function");
}

function isThenable(value: unknown): boolean {
  return isObjectLike(value) && typeof (value as { then?: unknown }).then === "function";
}

// ---------------------------------------------------------------------------------------------------------------
// Recording placeholders

const INSPECT = Symbol.for("nodejs.util.inspect.custom");
const INTEGER_KEY = /^-?(0|[1-9]\d*)$/;

function placeholder(selector: PathSelector): unknown {
  // A function target, so that calling a recorded method can be trapped too.
  const target = (): void => undefined;
  const proxy = new Proxy(target, handlerFor(selector));
  recordings.set(proxy, selector);
  return proxy;
}

function extend(selector: PathSelector, step: PathStep): unknown {
  return placeholder({ from: selector.from, path: [...selector.path, step] });
}

function computes(selector: PathSelector, what: string): AdaptorError {
  return new AdaptorError(
    `${describeSelector(selector)}: the adaptor ${what}. Adaptors only select outputs: a TypeScript adaptor runs ` +
      `once, at configuration time, on placeholders that record what it reads. ${ALTERNATIVES}`,
  );
}

function thrower(selector: PathSelector, what: string): () => never {
  return () => {
    throw computes(selector, what);
  };
}

function handlerFor(selector: PathSelector): ProxyHandler<() => void> {
  return {
    get(_target, prop) {
      if (typeof prop === "symbol") {
        if (prop === Symbol.toPrimitive) {
          return (hint: string) => {
            const what = hint === "string" ? "converts it to a string" : "does arithmetic or a comparison with it";
            throw computes(selector, what);
          };
        }
        if (prop === Symbol.iterator || prop === Symbol.asyncIterator) {
          return thrower(selector, "iterates over it (for...of, spreading or destructuring)");
        }
        if (prop === INSPECT) return () => `[traced ${describeSelector(selector)}]`;
        return undefined;
      }
      switch (prop) {
        case "then":
          return undefined; // never a thenable: awaiting a placeholder yields the placeholder
        case "toString":
        case "toLocaleString":
          return thrower(selector, "converts it to a string");
        case "valueOf":
          return thrower(selector, "does arithmetic or a comparison with it");
        case "toJSON":
          return thrower(selector, "serialises it");
        case "length":
          throw computes(
            selector,
            "reads its .length (the number of layers is not known at configuration time: " +
              "select with .slice() or negative indices such as .at(-1) instead)",
          );
        case "at":
          return (index: unknown) => extend(selector, integerArg(selector, "at", index));
        case "slice":
          return (...args: unknown[]) => {
            if (args.length > 2) throw computes(selector, `calls .slice() on it with ${args.length} arguments`);
            const start = optionalIntegerArg(selector, "slice", args[0]);
            const stop = optionalIntegerArg(selector, "slice", args[1]);
            return extend(selector, { slice: [start, stop, null] });
          };
        default:
          return extend(selector, INTEGER_KEY.test(prop) ? Number(prop) : prop);
      }
    },
    apply() {
      const last = selector.path[selector.path.length - 1];
      const method = typeof last === "string" ? `.${last}()` : "a function";
      throw computes({ from: selector.from, path: selector.path.slice(0, -1) }, `calls ${method} on it`);
    },
    has() {
      throw computes(selector, "tests a key with `in` on it");
    },
    ownKeys() {
      throw computes(selector, "lists its keys (Object.keys, object spreading or JSON)");
    },
    getOwnPropertyDescriptor() {
      throw computes(selector, "inspects a property descriptor of it");
    },
    set() {
      throw computes(selector, "assigns to it");
    },
    defineProperty() {
      throw computes(selector, "defines a property on it");
    },
    deleteProperty() {
      throw computes(selector, "deletes a property of it");
    },
  };
}

function integerArg(selector: PathSelector, method: string, value: unknown): number {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  const shown = isObjectLike(value) ? "a non-literal value" : showValue(value);
  throw computes(selector, `calls .${method}() on it with ${shown} (integer literals only)`);
}

function optionalIntegerArg(selector: PathSelector, method: string, value: unknown): number | null {
  return value === undefined || value === null ? null : integerArg(selector, method, value);
}
