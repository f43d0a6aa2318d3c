import { describe, expect, it } from "vitest";
import { Tensor } from "../src/index.js";
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from "../src/tensor/half.js";

describe("Tensor", () => {
  it("builds from nested arrays and infers shape and dtype", () => {
    const t = Tensor.from([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(t.dtype).toBe("float32");
    expect(t.shape).toEqual([2, 3]);
    expect(t.toArray()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(Tensor.from([[1n, 2n]]).dtype).toBe("int64");
    expect(Tensor.from([true, false]).toArray()).toEqual([true, false]);
  });

  it("handles 0-d and empty tensors", () => {
    const s = Tensor.from(3.5);
    expect(s.shape).toEqual([]);
    expect(s.toArray()).toBe(3.5);
    const e = Tensor.from([[], []] as number[][], "int32");
    expect(e.shape).toEqual([2, 0]);
    expect(e.size).toBe(0);
  });

  it("rejects ragged arrays and wrong storage", () => {
    expect(() => Tensor.from([[1, 2], [3]])).toThrow(/ragged/);
    expect(() => new Tensor(new Float32Array(3), [2, 2], "float32")).toThrow(/holds 4 elements but data has 3/);
    expect(() => new Tensor(new Float32Array(4), [4], "int32")).toThrow(/needs a Int32Array/);
    expect(() => Tensor.fromTypedArray(new Uint16Array(2))).toThrow(/ambiguous/);
  });

  it("converts float16 exactly for representable values and rounds to nearest even", () => {
    for (const v of [0, -0, 1, -2.5, 65504, 2 ** -14, 2 ** -24, Infinity, -Infinity]) {
      expect(Object.is(float16BitsToFloat32(float32ToFloat16Bits(v)), v)).toBe(true);
    }
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(float32ToFloat16Bits(70000)).toBe(0x7c00);
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
  });

  it("converts bfloat16 with round to nearest even", () => {
    expect(float32ToBfloat16Bits(1)).toBe(0x3f80);
    expect(bfloat16BitsToFloat32(0x3f80)).toBe(1);
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bfloat16BitsToFloat32(float32ToBfloat16Bits(NaN)))).toBe(true);
    expect(Tensor.from([0.5, -3], "bfloat16").toArray()).toEqual([0.5, -3]);
  });

  it("views aligned bytes without copying and copies misaligned ones", () => {
    const buf = new Uint8Array(20);
    new Float32Array(buf.buffer, 4, 4).set([1, 2, 3, 4]);
    const aligned = Tensor.fromBytes(buf.subarray(4, 20), [2, 2], "float32");
    expect(aligned.data.buffer).toBe(buf.buffer);
    const odd = new Uint8Array(17);
    odd.set(buf.subarray(4, 20), 1);
    const copied = Tensor.fromBytes(odd.subarray(1), [4], "float32");
    expect(copied.toArray()).toEqual([1, 2, 3, 4]);
    expect(copied.data.buffer).not.toBe(odd.buffer);
  });
});
