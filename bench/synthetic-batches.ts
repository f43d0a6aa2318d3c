import { Tensor } from "../src/index.js";

/** `count` deterministic classification batches of `batch` rows × `seq` tokens (ids below 1000, 4 labels). */
export function syntheticBatches(count: number, batch: number, seq: number): Array<Record<string, Tensor>> {
  return Array.from({ length: count }, (_, k) => {
    const rows = Array.from({ length: batch }, (_, i) => k * batch + i);
    return {
      input_ids: Tensor.from(
        rows.map((i) => Array.from({ length: seq }, (_, j) => BigInt(1 + ((i * 131 + j * 17) % 999)))),
        "int64",
      ),
      attention_mask: Tensor.from(
        rows.map(() => Array.from({ length: seq }, () => 1n)),
        "int64",
      ),
      labels: Tensor.from(
        rows.map((i) => BigInt(i % 4)),
        "int64",
      ),
    };
  });
}
