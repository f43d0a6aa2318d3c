import type { DType } from "../worker/protocol.js";
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from "./half.js";

export type { DType };

/** Storage per dtype: float16/bfloat16 keep raw bits in a Uint16Array, bool keeps 0/1 bytes. */
export type TensorStorage = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

export type NestedArray = number | bigint | boolean | NestedArray[];

type StorageCtor = {
  new (length: number): TensorStorage;
  new (buffer: ArrayBufferLike, offset: number, length: number): TensorStorage;
  BYTES_PER_ELEMENT: number;
};

const STORAGE: Record<DType, StorageCtor> = {
  float32: Float32Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
} as unknown as Record<DType, StorageCtor>;

export function bytesPerElement(dtype: DType): number {
  return STORAGE[dtype].BYTES_PER_ELEMENT;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function inferShape(value: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = value;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0]!;
  }
  return shape;
}

function flatten(value: NestedArray, shape: readonly number[], depth: number, out: (number | bigint | boolean)[]): void {
  if (depth === shape.length) {
    if (Array.isArray(value)) throw new TypeError(`Tensor.from: ragged nested array (too deep at depth ${depth})`);
    out.push(value);
    return;
  }
  if (!Array.isArray(value) || value.length !== shape[depth]) {
    throw new TypeError(`Tensor.from: ragged nested array: expected length ${shape[depth]} at depth ${depth}`);
  }
  for (const v of value) flatten(v, shape, depth + 1, out);
}

function inferDType(flat: (number | bigint | boolean)[]): DType {
  if (flat.length === 0) return "float32";
  if (typeof flat[0] === "boolean") return "bool";
  if (typeof flat[0] === "bigint") return "int64";
  return "float32";
}

/** An n-dimensional array in TypeScript memory, sent to and received from the worker without copies. */
export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorStorage;

  constructor(data: TensorStorage, shape: readonly number[], dtype: DType) {
    const ctor = STORAGE[dtype];
    if (!(data instanceof ctor)) {
      throw new TypeError(`Tensor: dtype ${dtype} needs a ${ctor.name}, got ${data.constructor.name}`);
    }
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new TypeError(`Tensor: invalid shape [${shape.join(", ")}]`);
    if (data.length !== numel(shape)) {
      throw new TypeError(`Tensor: shape [${shape.join(", ")}] holds ${numel(shape)} elements but data has ${data.length}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
  }

  /** From nested arrays (dtype inferred: numbers → float32, bigint → int64, booleans → bool) or a scalar (0-d). */
  static from(value: NestedArray, dtype?: DType): Tensor {
    const shape = inferShape(value);
    const flat: (number | bigint | boolean)[] = [];
    flatten(value, shape, 0, flat);
    const dt = dtype ?? inferDType(flat);
    const data = new STORAGE[dt](flat.length);
    for (let i = 0; i < flat.length; i++) data[i] = encodeElement(flat[i]!, dt) as never;
    return new Tensor(data, shape, dt);
  }

  /** Wraps a typed array (no copy). float16/bfloat16 take raw bits in a Uint16Array; bool takes a Uint8Array. */
  static fromTypedArray(data: TensorStorage, shape?: readonly number[], dtype?: DType): Tensor {
    const dt = dtype ?? defaultDType(data);
    return new Tensor(data, shape ?? [data.length], dt);
  }

  static zeros(shape: readonly number[], dtype: DType = "float32"): Tensor {
    return new Tensor(new STORAGE[dtype](numel(shape)), shape, dtype);
  }

  /** Views received bytes as a tensor; copies only when the buffer is misaligned for the element size. */
  static fromBytes(bytes: Uint8Array, shape: readonly number[], dtype: DType): Tensor {
    const ctor = STORAGE[dtype];
    const size = ctor.BYTES_PER_ELEMENT;
    const n = numel(shape);
    if (bytes.byteLength !== n * size) {
      throw new TypeError(`Tensor.fromBytes: ${bytes.byteLength} bytes cannot hold ${dtype}[${shape.join(", ")}]`);
    }
    if (bytes.byteOffset % size === 0) return new Tensor(new ctor(bytes.buffer, bytes.byteOffset, n), shape, dtype);
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    return new Tensor(new ctor(copy.buffer, 0, n), shape, dtype);
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The raw bytes (a view, not a copy). */
  bytes(): Uint8Array {
    return new Uint8Array(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }

  /** Element i of the flat data as a JS value (number, or boolean for bool; int64 as number). */
  get(i: number): number | boolean {
    return decodeElement(this.data[i]!, this.dtype);
  }

  /** Flat values as numbers (int64 converted with Number(); halves decoded). */
  toFlatArray(): number[] {
    const out = new Array<number>(this.size);
    for (let i = 0; i < this.size; i++) out[i] = Number(decodeElement(this.data[i]!, this.dtype));
    return out;
  }

  /** Nested JS arrays (numbers; booleans for bool). A 0-d tensor gives a scalar. */
  toArray(): NestedArray {
    const build = (dim: number, offset: number): [NestedArray, number] => {
      if (dim === this.shape.length) return [decodeElement(this.data[offset]!, this.dtype), offset + 1];
      const out: NestedArray[] = [];
      let o = offset;
      for (let i = 0; i < this.shape[dim]!; i++) {
        const [v, next] = build(dim + 1, o);
        out.push(v);
        o = next;
      }
      return [out, o];
    };
    return build(0, 0)[0];
  }

  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape, this.dtype);
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(", ")}])`;
  }
}

function defaultDType(data: TensorStorage): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array) return "uint8";
  throw new TypeError("Tensor.fromTypedArray: a Uint16Array is ambiguous; pass dtype 'float16' or 'bfloat16'");
}

function encodeElement(v: number | bigint | boolean, dtype: DType): number | bigint {
  switch (dtype) {
    case "int64":
      return typeof v === "bigint" ? v : BigInt(Math.trunc(Number(v)));
    case "bool":
      return v ? 1 : 0;
    case "float16":
      return float32ToFloat16Bits(Number(v));
    case "bfloat16":
      return float32ToBfloat16Bits(Number(v));
    default:
      return Number(v);
  }
}

function decodeElement(v: number | bigint, dtype: DType): number | boolean {
  switch (dtype) {
    case "int64":
      return Number(v);
    case "bool":
      return v !== 0;
    case "float16":
      return float16BitsToFloat32(Number(v));
    case "bfloat16":
      return bfloat16BitsToFloat32(Number(v));
    default:
      return Number(v);
  }
}
