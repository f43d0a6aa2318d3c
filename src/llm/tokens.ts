/** The valid next-token targets of a causal-LM batch, counted as the worker's causal-LM KD counts them. */
import { Tensor } from "../tensor/tensor.js";
import type { Batch } from "../worker/model-handle.js";

export const IGNORE_INDEX = -100;

export class TokenCountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenCountError";
  }
}

function matrix(batch: Record<string, Tensor>, key: string): Tensor | undefined {
  const t = batch[key];
  if (t === undefined) return undefined;
  if (!(t instanceof Tensor) || t.shape.length !== 2) {
    throw new TokenCountError(
      `batch.${key}: expected a (batch, length) tensor, got shape [${t instanceof Tensor ? t.shape.join(", ") : typeof t}]`,
    );
  }
  return t;
}

/**
 * Position i of a (batch, length) batch counts when token i + 1 is a target: `labels` ≠ -100 and, with an
 * `attention_mask`, the mask ≠ 0. The last position never counts.
 */
export function countTargetTokens(batch: Batch): number {
  if (batch instanceof Tensor || Array.isArray(batch)) {
    throw new TokenCountError("batch: causal-LM KD needs a record with labels and/or attention_mask (and input_ids)");
  }
  // a split batch (two tokenizers): the student's half holds the targets it trains on
  const record =
    "student" in batch && !(batch.student instanceof Tensor)
      ? (batch.student as Record<string, Tensor>)
      : (batch as Record<string, Tensor>);
  const labels = matrix(record, "labels");
  const mask = matrix(record, "attention_mask");
  const ref = labels ?? mask;
  if (!ref) {
    throw new TokenCountError("batch: give labels (-100 = no target) or an attention_mask to mark the next-token targets");
  }
  if (labels && mask && labels.shape.join() !== mask.shape.join()) {
    throw new TokenCountError(`batch: labels shape [${labels.shape.join(", ")}] != attention_mask shape [${mask.shape.join(", ")}]`);
  }
  const [rows, length] = ref.shape as [number, number];
  let count = 0;
  for (let r = 0; r < rows; r++) {
    for (let i = 1; i < length; i++) {
      const at = r * length + i;
      if (labels && Number(labels.data[at]) === IGNORE_INDEX) continue;
      if (mask && Number(mask.data[at]) === 0) continue;
      count++;
    }
  }
  return count;
}
