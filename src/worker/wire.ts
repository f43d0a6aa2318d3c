/** Encoding of args/results: tensors inside JSON values become `{ "$t": i }` placeholders plus raw frames. */
import { Tensor } from "../tensor/tensor.js";
import type { TensorMeta } from "./protocol.js";

export interface Encoded {
  value: unknown;
  metas: TensorMeta[];
  frames: Uint8Array[];
}

export function encodeValue(value: unknown): Encoded {
  const metas: TensorMeta[] = [];
  const frames: Uint8Array[] = [];
  const walk = (v: unknown): unknown => {
    if (v instanceof Tensor) {
      const bytes = v.bytes();
      metas.push({ dtype: v.dtype, shape: [...v.shape], byteLength: bytes.byteLength });
      frames.push(bytes);
      return { $t: metas.length - 1 };
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") {
      if (ArrayBuffer.isView(v)) throw new TypeError("a typed array must be wrapped in a Tensor before it is sent");
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = walk(x);
      return out;
    }
    return v;
  };
  return { value: walk(value), metas, frames };
}

export function decodeValue(value: unknown, metas: TensorMeta[], frames: Buffer[]): unknown {
  const tensors = metas.map((m, i) => Tensor.fromBytes(frames[i]!, m.shape, m.dtype));
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") {
      const rec = v as Record<string, unknown>;
      const keys = Object.keys(rec);
      if (keys.length === 1 && keys[0] === "$t" && typeof rec.$t === "number") {
        const t = tensors[rec.$t];
        if (!t) throw new Error(`reply references tensor ${rec.$t} but carries ${tensors.length}`);
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
