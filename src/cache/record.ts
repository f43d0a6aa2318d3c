/**
 * A cache record: the ordered tensors of one example (e.g. its teacher-logits row, or top-k values + indices).
 *
 * Layout (little-endian):
 *   u16 format version (1) | u16 tensor count
 *   per tensor: u8 dtype code | u8 ndim | u32 × ndim dims
 *   then each tensor's raw bytes, in order, unpadded.
 * Dtype codes are fixed here (not derived from the protocol's dtype list), so reordering that list cannot change
 * what old records mean.
 */
import { bytesPerElement, type DType, Tensor } from "../tensor/tensor.js";

export const RECORD_VERSION = 1;

const DTYPE_CODES: Record<DType, number> = {
  float32: 1,
  float16: 2,
  bfloat16: 3,
  float64: 4,
  int64: 5,
  int32: 6,
  int8: 7,
  uint8: 8,
  bool: 9,
};

const CODE_DTYPES = new Map<number, DType>(Object.entries(DTYPE_CODES).map(([dtype, code]) => [code, dtype as DType]));

const MAX_TENSORS = 0xffff;
const MAX_NDIM = 0xff;
const MAX_DIM = 0xffffffff;

/** A payload that is not a well-formed record. Stores treat it as corrupt data (a miss), never as a result. */
export class RecordFormatError extends Error {
  override readonly name = "RecordFormatError";
}

export function encodeRecord(tensors: readonly Tensor[]): Uint8Array {
  if (tensors.length > MAX_TENSORS) throw new RangeError(`encodeRecord: at most ${MAX_TENSORS} tensors, got ${tensors.length}`);
  let headerBytes = 4;
  let dataBytes = 0;
  for (const t of tensors) {
    if (t.ndim > MAX_NDIM) throw new RangeError(`encodeRecord: at most ${MAX_NDIM} dims, got ${t.ndim}`);
    if (t.shape.some((d) => d > MAX_DIM)) throw new RangeError(`encodeRecord: dim too large in [${t.shape.join(", ")}]`);
    headerBytes += 2 + 4 * t.ndim;
    dataBytes += t.data.byteLength;
  }
  const out = new Uint8Array(headerBytes + dataBytes);
  const view = new DataView(out.buffer);
  view.setUint16(0, RECORD_VERSION, true);
  view.setUint16(2, tensors.length, true);
  let pos = 4;
  for (const t of tensors) {
    view.setUint8(pos, DTYPE_CODES[t.dtype]);
    view.setUint8(pos + 1, t.ndim);
    pos += 2;
    for (const d of t.shape) {
      view.setUint32(pos, d, true);
      pos += 4;
    }
  }
  for (const t of tensors) {
    out.set(t.bytes(), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/** Decodes a record into tensors that own their memory (the payload buffer is not retained). */
export function decodeRecord(payload: Uint8Array): Tensor[] {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const need = (pos: number, n: number): void => {
    if (pos + n > payload.byteLength) {
      throw new RecordFormatError(`record truncated: needs ${pos + n} bytes, has ${payload.byteLength}`);
    }
  };
  need(0, 4);
  const version = view.getUint16(0, true);
  if (version !== RECORD_VERSION) throw new RecordFormatError(`unknown record version ${version}`);
  const count = view.getUint16(2, true);
  const metas: { dtype: DType; shape: number[]; byteLength: number }[] = [];
  let pos = 4;
  for (let i = 0; i < count; i++) {
    need(pos, 2);
    const code = view.getUint8(pos);
    const ndim = view.getUint8(pos + 1);
    const dtype = CODE_DTYPES.get(code);
    if (dtype === undefined) throw new RecordFormatError(`unknown dtype code ${code}`);
    pos += 2;
    need(pos, 4 * ndim);
    const shape: number[] = [];
    let n = 1;
    for (let d = 0; d < ndim; d++) {
      const dim = view.getUint32(pos, true);
      shape.push(dim);
      n *= dim;
      pos += 4;
    }
    metas.push({ dtype, shape, byteLength: n * bytesPerElement(dtype) });
  }
  const dataBytes = metas.reduce((s, m) => s + m.byteLength, 0);
  if (pos + dataBytes !== payload.byteLength) {
    throw new RecordFormatError(`record holds ${payload.byteLength} bytes but its header describes ${pos + dataBytes}`);
  }
  return metas.map((m) => {
    // slice() copies into a fresh, aligned buffer
    const t = Tensor.fromBytes(payload.slice(pos, pos + m.byteLength), m.shape, m.dtype);
    pos += m.byteLength;
    return t;
  });
}
