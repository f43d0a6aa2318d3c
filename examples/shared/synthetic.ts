/** The synthetic task of the small examples: random token ids, label 1 when the first token is in the upper half. */

import { seededRng } from "../../src/data/index.js";
import { type ModelHandle, Tensor } from "../../src/index.js";

export interface SyntheticOptions {
  vocab: number;
  seq: number;
  batch: number;
}

export function syntheticBatches(count: number, seed: number, o: SyntheticOptions): Array<Record<string, Tensor>> {
  const rng = seededRng(seed);
  return Array.from({ length: count }, () => {
    const ids = Array.from({ length: o.batch }, () => Array.from({ length: o.seq }, () => BigInt(1 + rng.int(o.vocab - 1))));
    return {
      input_ids: Tensor.from(ids, "int64"),
      attention_mask: Tensor.from(
        ids.map((row) => row.map(() => 1n)),
        "int64",
      ),
      labels: Tensor.from(
        ids.map((row) => (Number(row[0]) >= o.vocab / 2 ? 1n : 0n)),
        "int64",
      ),
    };
  });
}

/** Accuracy of a sequence classifier on batches that carry `labels`. */
export async function accuracy(model: ModelHandle, batches: Array<Record<string, Tensor>>): Promise<number> {
  let right = 0;
  let total = 0;
  for (const { labels, ...inputs } of batches) {
    const logits = (await model.predict(inputs)).logits!.toArray() as number[][];
    logits.forEach((row, i) => {
      right += Number(row.indexOf(Math.max(...row)) === labels!.get(i));
      total++;
    });
  }
  return right / total;
}

/** A BERT config for a model built from scratch (random init) in the worker. */
export function bertConfig(o: { vocab: number; hidden: number; layers: number; heads: number; labels: number }): Record<string, unknown> {
  return {
    model_type: "bert",
    vocab_size: o.vocab,
    hidden_size: o.hidden,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    intermediate_size: o.hidden * 2,
    max_position_embeddings: 128,
    num_labels: o.labels,
  };
}
