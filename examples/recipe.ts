/**
 * Any named recipe as a one-liner: T6, T3, T3_small, T4_tiny, T12_nano (TextBrewer's README recipes) or Theseus, from a
 * 12-layer BERT teacher fine-tuned on the synthetic task of the random-token example. Before distilling it prints the
 * student's shape, the layer map and the matches the recipe implies (widths scaled to this 96-wide teacher, see
 * recipePlan).
 *
 *   npx tsx examples/recipe.ts T4_tiny [--epochs 3]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatRecipePlan, recipePlan } from "../src/guidance/index.js";
import { GeneralDistiller, TheseusDistiller, Worker } from "../src/index.js";
import { RUNNABLE_RECIPES, type RunnableRecipe } from "../src/presets/index.js";
import { accuracy, syntheticTeacher } from "./shared/synthetic.js";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { epochs: { type: "string", default: "3" } } });
const name = positionals[0] as RunnableRecipe | undefined;
if (!name || !RUNNABLE_RECIPES.includes(name)) {
  console.error(`usage: npx tsx examples/recipe.ts <${RUNNABLE_RECIPES.join("|")}> [--epochs N]`);
  process.exit(2);
}
const epochs = Number(values.epochs);
const dir = mkdtempSync(join(tmpdir(), "recipe-"));
await using worker = await Worker.start({ device: "auto" });
try {
  await worker.seed(1);
  const { teacher, train, dev } = await syntheticTeacher(worker, join(dir, "teacher"));
  const plan = recipePlan(name, teacher.config!);
  console.log(formatRecipePlan(plan));
  console.log(`teacher dev accuracy ${(await accuracy(teacher, dev)).toFixed(3)}`);
  let best = 0;
  const callback = async ({ step, student }: { step: number; student: Parameters<typeof accuracy>[0] }) => {
    const acc = await accuracy(student, dev);
    best = Math.max(best, acc);
    console.log(`step ${step}: student dev accuracy ${acc.toFixed(3)}`);
  };
  const loop = {
    optimizer: { lr: 5e-4 },
    scheduler: { type: "linear" as const, warmupRatio: 0.1 },
    data: train,
    numEpochs: epochs,
    callback,
  };
  let parameters: number;
  if (plan.theseus) {
    const theseus = await TheseusDistiller.create({
      trainConfig: { outputDir: join(dir, "student"), ckptFrequency: 1 },
      teacher,
      numLayers: plan.studentConfig.num_hidden_layers,
      groups: plan.theseus.groups,
      ...(plan.layerMap ? { layerMap: plan.layerMap } : {}),
      replacement: plan.theseus.replacement,
    });
    await theseus.train(loop);
    parameters = await (await theseus.extract()).numParameters();
  } else {
    const student = await worker.createModel({
      config: plan.studentConfig,
      initFrom: teacher,
      ...(plan.layerMap ? { layerMap: plan.layerMap } : {}),
      warnNewWeights: false,
    });
    const adaptor = (batch: any, out: any) => ({ logits: out.logits, hidden: out.hidden_states, inputs_mask: batch.attention_mask });
    await new GeneralDistiller({
      trainConfig: { outputDir: join(dir, "student"), ckptFrequency: 1 },
      distillConfig: { temperature: plan.temperature!, intermediateMatches: plan.intermediateMatches },
      teacher,
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    }).train(loop);
    parameters = await student.numParameters();
  }
  const total = await teacher.numParameters();
  console.log(
    `${name}: student ${parameters.toLocaleString()} parameters (${((100 * parameters) / total).toFixed(0)}% of the teacher), best dev accuracy ${best.toFixed(3)}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
