/**
 * TextBrewer's random-token example in TypeScript: a BERT teacher, a 3-layer student, GeneralDistiller with
 * hidden_mse and nst matches at temperature 8, linear warmup, an accuracy callback and display_parameters.
 * The teacher is built on the spot from a BERT config (random init); the task is synthetic: label 1 when
 * the first token is in the upper half of the vocabulary. Runs on CPU in well under a minute.
 *
 *   npx tsx examples/random-tokens.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BasicTrainer, GeneralDistiller, NO_DECAY_GROUP, Tensor, Worker, seededRng, type ModelHandle } from "../src/index.js";

const VOCAB = 200;
const SEQ = 32;
const BATCH = 16;

function makeBatches(count: number, seed: number): Array<Record<string, Tensor>> {
  const rng = seededRng(seed);
  return Array.from({ length: count }, () => {
    const ids = Array.from({ length: BATCH }, () => Array.from({ length: SEQ }, () => BigInt(1 + rng.int(VOCAB - 1))));
    return {
      input_ids: Tensor.from(ids, "int64"),
      attention_mask: Tensor.from(ids.map((row) => row.map(() => 1n)), "int64"),
      labels: Tensor.from(ids.map((row) => (Number(row[0]) >= VOCAB / 2 ? 1n : 0n)), "int64"),
    };
  });
}

async function accuracy(model: ModelHandle, batches: Array<Record<string, Tensor>>): Promise<number> {
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

const dir = mkdtempSync(join(tmpdir(), "random-tokens-"));
await using worker = await Worker.start({ device: "auto" });
try {
  const config = {
    model_type: "bert",
    vocab_size: VOCAB,
    hidden_size: 128,
    num_hidden_layers: 8,
    num_attention_heads: 4,
    intermediate_size: 256,
    max_position_embeddings: 64,
    num_labels: 2,
  };
  const teacher = await worker.createModel({ config, task: "sequence-classification" });
  const train = makeBatches(30, 1);
  const dev = makeBatches(8, 2);
  console.log(await teacher.describe({ maxLevel: 3 }));

  console.log("fine-tuning the teacher…");
  await new BasicTrainer({ trainConfig: { outputDir: join(dir, "teacher-run"), ckptEpochFrequency: 100 }, model: teacher, adaptor: (_b, o) => ({ losses: o.loss }) }).train({
    optimizer: { type: "AdamW", lr: 5e-4, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
    scheduler: { type: "linear", warmupRatio: 0.1 },
    data: train,
    numEpochs: 3,
  });
  console.log(`teacher dev accuracy: ${(await accuracy(teacher, dev)).toFixed(3)}`);

  const student = await worker.createModel({ config: { num_hidden_layers: 3 }, initFrom: teacher, layerMap: [0, 4, 7] });
  console.log(await student.describe({ maxLevel: 2 }));
  const adaptor = (batch: any, out: any) => ({ logits: out.logits, hidden: out.hidden_states, inputs_mask: batch.attention_mask });
  const distiller = new GeneralDistiller({
    trainConfig: { outputDir: join(dir, "student-run"), ckptFrequency: 1 },
    distillConfig: {
      temperature: 8,
      intermediateMatches: [
        { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
        { layerT: 8, layerS: 3, feature: "hidden", loss: "hidden_mse", weight: 1 },
        { layerT: [0, 0], layerS: [0, 0], feature: "hidden", loss: "nst", weight: 1 },
        { layerT: [8, 8], layerS: [3, 3], feature: "hidden", loss: "nst", weight: 1 },
      ],
    },
    teacher,
    student,
    adaptorT: adaptor,
    adaptorS: adaptor,
  });
  console.log("distilling the student…");
  await distiller.train({
    optimizer: { type: "AdamW", lr: 5e-4 },
    scheduler: { type: "linear", warmupRatio: 0.1 },
    data: train,
    numEpochs: 3,
    callback: async ({ step, student: s }) => console.log(`step ${step}: student dev accuracy ${(await accuracy(s, dev)).toFixed(3)}`),
  });
  console.log(`teacher ${(await teacher.numParameters()).toLocaleString()} parameters, student ${(await student.numParameters()).toLocaleString()}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
