/**
 * TextBrewer's T3 recipe (temperature 8, L3_hidden_mse + L3_hidden_smmd) from a 12-layer BERT teacher to a
 * 3-layer student initialised from teacher layers 3, 7, 11, with a teacher fine-tuned on the synthetic task of
 * the random-token example. Runs on CPU in a few minutes.
 *
 *   npx tsx examples/t3-recipe.ts
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GeneralDistiller, recipes, Worker } from "../src/index.js";
import { accuracy, syntheticTeacher } from "./shared/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "t3-recipe-"));
await using worker = await Worker.start({ device: "auto" });
try {
  const { teacher, train, dev } = await syntheticTeacher(worker, join(dir, "teacher"));
  const teacherAccuracy = await accuracy(teacher, dev);
  const student = await worker.createModel({ config: { num_hidden_layers: 3 }, initFrom: teacher, layerMap: [3, 7, 11] });
  const adaptor = (batch: any, out: any) => ({ logits: out.logits, hidden: out.hidden_states, inputs_mask: batch.attention_mask });
  let best = 0;
  await new GeneralDistiller({
    trainConfig: { outputDir: join(dir, "student"), ckptFrequency: 1 },
    distillConfig: recipes.T3, // { temperature: 8, intermediateMatches: [...L3_hidden_mse, ...L3_hidden_smmd] }
    teacher,
    student,
    adaptorT: adaptor,
    adaptorS: adaptor,
  }).train({
    optimizer: { lr: 5e-4 },
    scheduler: { type: "linear", warmupRatio: 0.1 },
    data: train,
    numEpochs: 3,
    callback: async ({ step, student: s }) => {
      const acc = await accuracy(s, dev);
      best = Math.max(best, acc);
      console.log(`step ${step}: student dev accuracy ${acc.toFixed(3)}`);
    },
  });
  const [nt, ns] = [await teacher.numParameters(), await student.numParameters()];
  console.log(`teacher: ${nt.toLocaleString()} parameters, dev accuracy ${teacherAccuracy.toFixed(3)}`);
  console.log(`student: ${ns.toLocaleString()} parameters (${((100 * ns) / nt).toFixed(0)}%), best dev accuracy ${best.toFixed(3)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
