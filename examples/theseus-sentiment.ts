/**
 * BERT-of-Theseus on the sentiment demo's data, at the demo student's size and budget: the fine-tuned teacher that
 * examples/layer-map-sentiment.ts (or the demo) left in <runDir>/teacher is the predecessor; a 2-layer successor
 * (teacher layers 0 and 5 to start, as the demo's student) replaces teacher layers 0-2 and 3-5, with the demo
 * student's epochs, batches (the training set plus one augmented copy per epoch), learning rate and schedule, on the
 * task loss. The replacement rate rises linearly from 0.3 to 1 over the first two thirds of the steps. The checkpoint
 * with the best dev accuracy is kept and its successor extracted to <runDir>/theseus/successor (an HF folder).
 *
 *   npx tsx examples/theseus-sentiment.ts [runDir] [--train N] [--epochs N]   (as for layer-map-sentiment.ts)
 */
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { accuracy, argmax, type Encoded, labelTensor, makeBatches, rowLengths, seededRng, type TextExample } from "../src/data/index.js";
import { findPackagedModel, type ModelHandle, NO_DECAY_GROUP, TheseusDistiller, type TokenizerHandle, Worker } from "../src/index.js";
import { augmentSentence, DEFAULT_SETTINGS as DEMO } from "./sentiment.js";
import { MINILM_L6 } from "./shared/minilm.js";
import { loadSentiment, splitSentiment } from "./shared/sentiment.js";
import { readTeacherMarker } from "./shared/teacher-marker.js";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { train: { type: "string" }, epochs: { type: "string" } } });
const trainLimit = values.train === undefined ? undefined : Number(values.train);
const S = { ...DEMO, student: { ...DEMO.student, epochs: values.epochs === undefined ? DEMO.student.epochs : Number(values.epochs) } };
const runDir = resolve(positionals[0] ?? "runs/layer-map");
const outDir = join(runDir, "theseus");
rmSync(outDir, { recursive: true, force: true });

async function encode(tokenizer: TokenizerHandle, examples: readonly TextExample[]): Promise<Encoded> {
  const { token_type_ids: _t, ...enc } = await tokenizer.encode(
    examples.map((e) => e.text),
    { maxLength: S.maxLength, padding: "longest", truncation: true },
  );
  return { ...enc, labels: labelTensor(examples.map((e) => e.label)) };
}

async function evaluate(model: ModelHandle, batches: readonly Encoded[]): Promise<number> {
  const predicted: number[] = [];
  const gold: number[] = [];
  for (const { labels, ...inputs } of batches) {
    predicted.push(...argmax((await model.predict(inputs)).logits!));
    gold.push(...labels!.toFlatArray().map(Number));
  }
  return accuracy(predicted, gold);
}

await using worker = await Worker.start({ device: "cpu" });
const split = splitSentiment(loadSentiment(), { seed: S.seed });
const train = trainLimit === undefined ? split.train : split.train.slice(0, trainLimit);
const tokenizer = await worker.loadTokenizer((await findPackagedModel(worker, MINILM_L6)).path);
const epochs: Encoded[] = [];
for (let e = 0; e < S.student.epochs; e++) {
  const rng = seededRng(S.seed * 7919 + e); // the demo's augmented copies, drawn the same way
  const extra = Array.from({ length: S.student.augmentedCopies }, () =>
    train.map((x) => ({ ...x, text: augmentSentence(x.text, rng) })),
  ).flat();
  epochs.push(await encode(tokenizer, [...train, ...extra]));
}
const data = (epoch: number) => {
  const enc = epochs[epoch % epochs.length]!;
  return makeBatches(enc, { batchSize: S.batchSize, rng: seededRng(S.seed * 1000 + epoch), lengths: rowLengths(enc.attention_mask!) });
};
const dev = makeBatches(await encode(tokenizer, split.dev), { batchSize: 64 });
const test = makeBatches(await encode(tokenizer, split.test), { batchSize: 64 });

const marker = readTeacherMarker(join(runDir, "teacher"));
if (!marker) throw new Error(`no fine-tuned teacher in ${join(runDir, "teacher")}: run examples/layer-map-sentiment.ts first`);
const teacher = await worker.loadModel({ path: join(runDir, "teacher", marker.checkpoint), task: "sequence-classification" });
const stepsPerEpoch = Math.ceil((train.length * (1 + S.student.augmentedCopies)) / S.batchSize);
const totalSteps = stepsPerEpoch * S.student.epochs;
const k = 0.7 / ((2 / 3) * totalSteps); // 0.3 → 1 over the first two thirds
await worker.seed(S.seed);
const theseus = await TheseusDistiller.create({
  trainConfig: { outputDir: outDir, device: "cpu", seed: S.seed, ckptFrequency: S.student.checkpointsPerEpoch },
  teacher,
  numLayers: S.student.layers,
  layerMap: S.student.layerMap,
  replacement: { type: "linear", base: 0.3, k },
});
console.log(
  `Theseus: ${S.student.layers} successor layers from teacher layers [${theseus.layerMap.join(", ")}], groups ${JSON.stringify(theseus.groups)}; ` +
    `${totalSteps} steps, replacement rate 0.3 + ${k.toExponential(2)}·t`,
);
let best = { step: -1, dev: -1, test: -1, rate: 0 };
const started = performance.now();
await theseus.train({
  optimizer: { type: "AdamW", lr: S.student.lr, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
  scheduler: { type: "linear", warmupRatio: S.student.warmupRatio },
  data,
  numEpochs: S.student.epochs,
  maxGradNorm: 1,
  progress: false,
  callback: async ({ step, student }) => {
    const devAcc = await evaluate(student, dev);
    const { rate } = await theseus.state();
    console.log(`step ${step}: replacement rate ${rate.toFixed(2)}, successor dev accuracy ${(100 * devAcc).toFixed(1)}%`);
    if (devAcc >= best.dev) {
      best = { step, dev: devAcc, test: await evaluate(student, test), rate };
      const successor = await theseus.extract();
      await successor.save(join(outDir, "successor"));
      await successor.dispose();
    }
  },
});
const seconds = (performance.now() - started) / 1000;
// the checkpoints hold the predecessor copy too; the extracted successor is what stays
for (const name of readdirSync(outDir))
  if (/^gs\d+$/.test(name) || name === "latest") rmSync(join(outDir, name), { recursive: true, force: true });
const successor = await worker.loadModel({ path: join(outDir, "successor") });
const result = {
  trainLimit: trainLimit ?? null,
  epochs: S.student.epochs,
  steps: totalSteps,
  seconds,
  best,
  successorTestAccuracy: await evaluate(successor, test),
  parameters: await successor.numParameters(),
};
writeFileSync(join(outDir, "result.json"), `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `best: step ${best.step}, dev ${(100 * best.dev).toFixed(1)}%, test ${(100 * best.test).toFixed(1)}% (extracted successor: ${(100 * result.successorTestAccuracy).toFixed(1)}%), ${seconds.toFixed(0)} s`,
);
