/** The synthetic task of the small examples: random token ids, label 1 when the first token is in the upper half. */

import { seededRng } from "../../src/data/index.js";
import { BasicTrainer, type ModelHandle, NO_DECAY_GROUP, Tensor, type Worker } from "../../src/index.js";

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

export interface SyntheticTeacher {
  teacher: ModelHandle;
  train: Array<Record<string, Tensor>>;
  dev: Array<Record<string, Tensor>>;
}

/**
 * The recipes' teacher: a 12-layer BERT (96 wide) built in `worker` and fine-tuned for 3 epochs on 30 synthetic
 * batches (checkpoints under `outputDir`), with its train and dev batches.
 */
export async function syntheticTeacher(worker: Worker, outputDir: string): Promise<SyntheticTeacher> {
  const task = { vocab: 200, seq: 32, batch: 16 };
  const teacher = await worker.createModel({
    config: bertConfig({ vocab: task.vocab, hidden: 96, layers: 12, heads: 4, labels: 2 }),
    task: "sequence-classification",
  });
  const train = syntheticBatches(30, 11, task);
  const dev = syntheticBatches(8, 12, task);
  await new BasicTrainer({
    trainConfig: { outputDir, ckptEpochFrequency: 100 },
    model: teacher,
    adaptor: (_b, o) => ({ losses: o.loss }),
  }).train({
    optimizer: { lr: 5e-4, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
    scheduler: { type: "linear", warmupRatio: 0.1 },
    data: train,
    numEpochs: 3,
  });
  return { teacher, train, dev };
}
