/**
 * Writes what examples/configs/sentiment.yaml reads, from the sentiment demo's own pieces: its split of the sentences
 * (train, dev, test as JSON lines), one training file per student epoch holding the training set and that epoch's
 * augmented copy (the demo's seeds and augmentation), a link to the demo's fine-tuned teacher, and a link to the
 * tokenizer files of the model it was fine-tuned from (the teacher's checkpoint holds weights and config only).
 *
 *   npm run demo                                    (once: fine-tunes the teacher into runs/demo/teacher)
 *   npx tsx examples/configs/sentiment-data.ts      (writes runs/config-demo/)
 *   npx textbrewer distill examples/configs/sentiment.yaml
 */
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { seededRng } from "../../src/data/index.js";
import { findPackagedModel, Worker } from "../../src/index.js";
import { augmentSentence, DEFAULT_SETTINGS } from "../sentiment.js";
import { MINILM_L6 } from "../shared/minilm.js";
import { loadSentiment, splitSentiment } from "../shared/sentiment.js";
import { readTeacherMarker } from "../shared/teacher-marker.js";

const demoDir = resolve(process.argv[2] ?? "runs/demo");
const outDir = resolve(process.argv[3] ?? "runs/config-demo");
const s = DEFAULT_SETTINGS;

const marker = readTeacherMarker(join(demoDir, "teacher"));
if (!marker) throw new Error(`no fine-tuned teacher in ${join(demoDir, "teacher")}: run \`npm run demo\` first`);

const split = splitSentiment(loadSentiment(), { seed: s.seed });
const lines = (rows: ReadonlyArray<{ text: string; label: number }>) =>
  `${rows.map((r) => JSON.stringify({ text: r.text, label: r.label })).join("\n")}\n`;
mkdirSync(join(outDir, "data"), { recursive: true });
writeFileSync(join(outDir, "data", "dev.jsonl"), lines(split.dev));
writeFileSync(join(outDir, "data", "test.jsonl"), lines(split.test));
// the demo's student epochs: the training set, then `augmentedCopies` fresh augmented copies of it (seeded per epoch)
for (let e = 0; e < s.student.epochs; e++) {
  const rng = seededRng(s.seed * 7919 + e);
  const extra = Array.from({ length: s.student.augmentedCopies }, () =>
    split.train.map((x) => ({ ...x, text: augmentSentence(x.text, rng) })),
  ).flat();
  writeFileSync(join(outDir, "data", `train-epoch${e}.jsonl`), lines([...split.train, ...extra]));
}
const link = (name: string, target: string) => {
  const path = join(outDir, name);
  if (existsSync(path)) rmSync(path, { recursive: true, force: true });
  symlinkSync(target, path, "dir");
};
link("teacher", resolve(demoDir, "teacher", marker.checkpoint));
const worker = await Worker.start({ device: "cpu" });
try {
  link("tokenizer", (await findPackagedModel(worker, MINILM_L6)).path);
} finally {
  await worker.close();
}
console.log(
  `wrote ${outDir}/data (train ${split.train.length} + augmented, dev ${split.dev.length}, test ${split.test.length}); teacher → ${marker.checkpoint}; tokenizer → all-MiniLM-L6-v2`,
);
