/** Float conversions between compute and storage dtypes, rounding to nearest, ties to even. */
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from "../tensor/half.js";
import { type DType, Tensor } from "../tensor/tensor.js";

export type StorageDType = "float32" | "float16" | "bfloat16";

export const STORAGE_DTYPES: readonly StorageDType[] = ["float32", "float16", "bfloat16"];

const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(["float32", "float16", "bfloat16", "float64"]);

export function isFloatDType(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

/** Float tensors → `dtype` (a new tensor unless already in it); integer and bool tensors are returned as they are. */
export function toStorageDtype(t: Tensor, dtype: StorageDType): Tensor {
  if (!isFloatDType(t.dtype) || t.dtype === dtype) return t;
  switch (dtype) {
    case "float32":
      return toFloat32(t);
    case "float16":
      return new Tensor(halfBits(t, float32ToFloat16Bits, FLOAT16), t.shape, "float16");
    case "bfloat16": {
      const fast = t.dtype === "float32";
      const bits = fast ? float32ToBfloat16Fast(t.data as Float32Array) : halfBits(t, float32ToBfloat16Bits, BFLOAT16);
      return new Tensor(bits, t.shape, "bfloat16");
    }
  }
}

/** Float tensors → float32 (a new tensor unless already float32); integer and bool tensors are returned as they are. */
export function toFloat32(t: Tensor): Tensor {
  if (!isFloatDType(t.dtype) || t.dtype === "float32") return t;
  const out = new Float32Array(t.size);
  const src = t.data;
  if (t.dtype === "float64")
    out.set(src as Float64Array); // assignment to a Float32Array rounds to nearest even
  else {
    const decode = t.dtype === "float16" ? float16BitsToFloat32 : bfloat16BitsToFloat32;
    for (let i = 0; i < out.length; i++) out[i] = decode(src[i] as number);
  }
  return new Tensor(out, t.shape, "float32");
}

interface HalfFormat {
  /** significand bits, the hidden bit included */
  precision: number;
  /** exponent of the smallest normal number */
  minExponent: number;
}

const FLOAT16: HalfFormat = { precision: 11, minExponent: -14 };
const BFLOAT16: HalfFormat = { precision: 8, minExponent: -126 };

function halfBits(t: Tensor, fromFloat32: (v: number) => number, format: HalfFormat): Uint16Array {
  const out = new Uint16Array(t.size);
  const src = t.data;
  if (t.dtype === "float64") {
    // Going through float32 would round twice, which can land on the wrong side of a tie.
    for (let i = 0; i < out.length; i++) out[i] = fromFloat32(roundFloat64(src[i] as number, format));
  } else {
    const decode = t.dtype === "float16" ? float16BitsToFloat32 : t.dtype === "bfloat16" ? bfloat16BitsToFloat32 : null;
    for (let i = 0; i < out.length; i++) out[i] = fromFloat32(decode === null ? (src[i] as number) : decode(src[i] as number));
  }
  return out;
}

function float32ToBfloat16Fast(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < out.length; i++) {
    const b = bits[i]!;
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) out[i] = (b >>> 16) | 0x0040;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

const f64 = new Float64Array(1);
const f64Hi = new Uint32Array(f64.buffer, 4, 1);

/**
 * Rounds a float64 to the nearest value of the format (ties to even), returned as a number that float32 holds
 * exactly, so the half.ts encoders then convert it without a second rounding. Overflow comes back as a value
 * past the format's maximum, which those encoders turn into ±Infinity.
 */
function roundFloat64(x: number, format: HalfFormat): number {
  if (!Number.isFinite(x) || x === 0) return x;
  f64[0] = x;
  const biased = (f64Hi[0]! >>> 20) & 0x7ff;
  // float64 subnormals are far below half the smallest subnormal of either format
  if (biased === 0) return x < 0 ? -0 : 0;
  const exponent = Math.max(biased - 1023, format.minExponent);
  const quantum = 2 ** (exponent - format.precision + 1);
  const scaled = x / quantum; // exact: a power-of-two scaling that stays in range
  const floor = Math.floor(scaled);
  const frac = scaled - floor;
  const rounded = frac > 0.5 || (frac === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
  const result = rounded * quantum;
  return result === 0 && x < 0 ? -0 : result;
}
