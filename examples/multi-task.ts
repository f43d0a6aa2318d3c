/**
 * MultiTaskDistiller: two synthetic tasks (first token in the upper half; first token in the lower half), a teacher
 * fine-tuned for each, and one student that learns both; each micro-batch comes from a task drawn with
 * probability ∝ (number of batches)^tau.
 *
 *   npx tsx examples/multi-task.ts
 */
import { BasicTrainer, MultiTaskDistiller, Tensor, Worker } from "../src/index.js";
import { accuracy, bertConfig, syntheticBatches } from "./shared/synthetic.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const task = { vocab: 200, seq: 32, batch: 16 };
/** The second task: token 1 at position 1 marks it (so one student can tell the tasks apart); label 1 when the first token is in the lower half. */
function invertedTask(batches: Array<Record<string, Tensor>>): Array<Record<string, Tensor>> {
  return batches.map((b) => {
    const ids = (b.input_ids!.toArray() as number[][]).map((row) => row.map((v, j) => (j === 1 ? 1 : v)));
    return {
      ...b,
      input_ids: Tensor.from(ids.map((row) => row.map(BigInt)), "int64"),
      labels: Tensor.from(ids.map((row) => (row[0]! < task.vocab / 2 ? 1n : 0n)), "int64"),
    };
  });
}

const dir = mkdtempSync(join(tmpdir(), "multi-task-"));
await using worker = await Worker.start({ device: "auto" });
try {
  const data = { first: syntheticBatches(24, 31, task), inverted: invertedTask(syntheticBatches(24, 32, task)) };
  const dev = { first: syntheticBatches(8, 33, task), inverted: invertedTask(syntheticBatches(8, 34, task)) };
  const teachers: Record<string, Awaited<ReturnType<Worker["createModel"]>>> = {};
  for (const name of ["first", "inverted"] as const) {
    const teacher = await worker.createModel({ config: bertConfig({ vocab: task.vocab, hidden: 96, layers: 4, heads: 4, labels: 2 }), task: "sequence-classification" });
    await new BasicTrainer({ trainConfig: { outputDir: join(dir, name), ckptEpochFrequency: 100 }, model: teacher, adaptor: (_b, o) => ({ losses: o.loss }) }).train({
      optimizer: { lr: 5e-4 },
      data: data[name],
      numEpochs: 4,
    });
    console.log(`teacher '${name}': dev accuracy ${(await accuracy(teacher, dev[name])).toFixed(3)}`);
    teachers[name] = teacher;
  }
  const student = await worker.createModel({ config: bertConfig({ vocab: task.vocab, hidden: 96, layers: 2, heads: 4, labels: 2 }), task: "sequence-classification" });
  const adaptor = (_b: any, o: any) => ({ logits: o.logits, losses: o.loss });
  await new MultiTaskDistiller({
    trainConfig: { outputDir: join(dir, "student"), ckptSteps: 60, seed: 1 },
    distillConfig: { temperature: 4, hardLabelWeight: 0.5 },
    teachers,
    student,
    adaptorT: { first: adaptor, inverted: adaptor },
    adaptorS: { first: adaptor, inverted: adaptor },
  }).train({
    optimizer: { lr: 5e-4 },
    data,
    numSteps: 180,
    tau: 0.5,
    callback: async ({ step, student: s }) =>
      console.log(`step ${step}: student dev accuracy first ${(await accuracy(s, dev.first)).toFixed(3)}, inverted ${(await accuracy(s, dev.inverted)).toFixed(3)}`),
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
