/**
 * Encoding of args/results inside the JSON header. Tensors become `{ "$t": i }` placeholders plus raw frames;
 * non-finite numbers, which strict JSON cannot hold, become `{ "$f": "NaN" | "Infinity" | "-Infinity" }`.
 * An object whose only key is `$t` or `$f` is therefore reserved and refused on the way out.
 */
import { Tensor } from "../tensor/tensor.js";
import { ProtocolError } from "./errors.js";
import type { TensorMeta } from "./protocol.js";

export interface Encoded {
  value: unknown;
  metas: TensorMeta[];
  frames: Uint8Array[];
}

export const NON_FINITE_NAMES = ["NaN", "Infinity", "-Infinity"] as const;

const NON_FINITE_VALUES: Record<string, number> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  "-Infinity": Number.NEGATIVE_INFINITY,
};

// Objects that JSON would silently turn into `{}` or a string, losing what the caller meant.
const REFUSED_OBJECTS: Array<[new (...args: never[]) => object, string, string]> = [
  [Map, "a Map", "use a plain object"],
  [Set, "a Set", "use an array"],
  [WeakMap, "a WeakMap", "use a plain object"],
  [WeakSet, "a WeakSet", "use an array"],
  [Date, "a Date", "send date.toISOString() or date.getTime()"],
  [RegExp, "a RegExp", "send its source string"],
  [Promise, "a Promise", "await it first"],
  [ArrayBuffer, "an ArrayBuffer", "wrap the data in a Tensor"],
];

function isReservedPlaceholder(rec: Record<string, unknown>): boolean {
  const keys = Object.keys(rec);
  return keys.length === 1 && (keys[0] === "$t" || keys[0] === "$f");
}

function pathOf(path: readonly (string | number)[]): string {
  let out = "args";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
  return out;
}

/**
 * Walks `value` (a call's args) into a JSON-safe value; throws ProtocolError naming the op and the path of the first
 * value that cannot travel (a function, a bigint, a cycle, a Map, a typed array outside a Tensor, a reserved key).
 */
export function encodeValue(value: unknown, op = "call"): Encoded {
  const metas: TensorMeta[] = [];
  const frames: Uint8Array[] = [];
  const onPath = new Set<object>();
  const path: (string | number)[] = []; // a stack, turned into text only for an error
  const refuse = (what: string, fix?: string): never => {
    throw new ProtocolError(`${op}: ${pathOf(path)} is ${what}, which cannot be sent to the worker${fix ? `; ${fix}` : ""}`, "request");
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === "number") return Number.isFinite(v) ? v : { $f: Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity" };
    if (typeof v === "bigint") return refuse(`a bigint (${v}n)`, "pass a number, or an int64 Tensor for exact 64-bit integers");
    if (typeof v === "function") return refuse("a function");
    if (typeof v === "symbol") return refuse("a symbol");
    if (v === null || typeof v !== "object") return v;
    if (v instanceof Tensor) {
      const bytes = v.bytes();
      metas.push({ dtype: v.dtype, shape: [...v.shape], byteLength: bytes.byteLength });
      frames.push(bytes);
      return { $t: metas.length - 1 };
    }
    if (ArrayBuffer.isView(v)) return refuse("a typed array", "wrap it in a Tensor (Tensor.fromTypedArray(data, shape))");
    for (const [ctor, what, fix] of REFUSED_OBJECTS) if (v instanceof ctor) return refuse(what, fix);
    if (onPath.has(v)) return refuse("a circular reference");
    onPath.add(v);
    let out: unknown;
    if (Array.isArray(v)) {
      const arr = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        arr[i] = walk(v[i]);
        path.pop();
      }
      out = arr;
    } else {
      const rec = v as Record<string, unknown>;
      if (isReservedPlaceholder(rec))
        refuse(
          `an object whose only key is '${Object.keys(rec)[0]}'`,
          "that key alone is reserved for the wire's placeholders; add another key or rename it",
        );
      const obj: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(rec)) {
        if (x === undefined) continue;
        path.push(k);
        obj[k] = walk(x);
        path.pop();
      }
      out = obj;
    }
    onPath.delete(v);
    return out;
  };
  return { value: walk(value), metas, frames };
}

export function decodeValue(value: unknown, metas: TensorMeta[], frames: Buffer[]): unknown {
  if (metas.length !== frames.length)
    throw new ProtocolError(`reply describes ${metas.length} tensors but carries ${frames.length} frames`, "reply");
  const tensors = metas.map((m, i) => {
    try {
      return Tensor.fromBytes(frames[i]!, m.shape, m.dtype);
    } catch (e) {
      throw new ProtocolError(`reply tensor ${i}: ${(e as Error).message}`, "reply");
    }
  });
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") {
      const rec = v as Record<string, unknown>;
      if (isReservedPlaceholder(rec)) {
        if ("$f" in rec) {
          const f = rec.$f;
          if (typeof f !== "string" || !(f in NON_FINITE_VALUES)) {
            throw new ProtocolError(`reply holds {"$f": ${JSON.stringify(f)}}; expected one of ${NON_FINITE_NAMES.join(", ")}`, "reply");
          }
          return NON_FINITE_VALUES[f];
        }
        const t = typeof rec.$t === "number" ? tensors[rec.$t] : undefined;
        if (!t) throw new ProtocolError(`reply references tensor ${JSON.stringify(rec.$t)} but carries ${tensors.length}`, "reply");
        return t;
      }
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(rec)) out[k] = walk(x);
      return out;
    }
    return v;
  };
  return walk(value);
}
