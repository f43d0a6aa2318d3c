/**
 * MultiTeacherDistiller: three teachers fine-tuned from different random initialisations on the synthetic task of
 * the random-token example, one 2-layer student distilled against the mean of their logits.
 *
 *   npx tsx examples/multi-teacher.ts
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BasicTrainer, MultiTeacherDistiller, Worker } from "../src/index.js";
import { accuracy, bertConfig, syntheticBatches } from "./shared/synthetic.js";

const task = { vocab: 200, seq: 32, batch: 16 };
const dir = mkdtempSync(join(tmpdir(), "multi-teacher-"));
await using worker = await Worker.start({ device: "auto" });
try {
  const train = syntheticBatches(24, 21, task);
  const dev = syntheticBatches(8, 22, task);
  const teachers = [];
  for (let i = 0; i < 3; i++) {
    const teacher = await worker.createModel({
      config: bertConfig({ vocab: task.vocab, hidden: 96, layers: 4, heads: 4, labels: 2 }),
      task: "sequence-classification",
    });
    await new BasicTrainer({
      trainConfig: { outputDir: join(dir, `teacher${i}`), seed: i, ckptEpochFrequency: 100 },
      model: teacher,
      adaptor: (_b, o) => ({ losses: o.loss }),
    }).train({
      optimizer: { lr: 5e-4 },
      data: train,
      numEpochs: 3,
    });
    console.log(`teacher ${i}: dev accuracy ${(await accuracy(teacher, dev)).toFixed(3)}`);
    teachers.push(teacher);
  }
  const student = await worker.createModel({ config: { num_hidden_layers: 2 }, initFrom: teachers[0]!, layerMap: [1, 3] });
  const logits = (_b: any, o: any) => ({ logits: o.logits });
  await new MultiTeacherDistiller({
    trainConfig: { outputDir: join(dir, "student") },
    distillConfig: { temperature: 4 },
    teachers,
    student,
    adaptorT: logits,
    adaptorS: logits,
  }).train({
    optimizer: { lr: 5e-4 },
    data: train,
    numEpochs: 3,
    teacherCache: {}, // the teachers' mean is computed once per example, then served from memory
    callback: async ({ step, student: s }) => console.log(`step ${step}: student dev accuracy ${(await accuracy(s, dev)).toFixed(3)}`),
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
