/**
 * Writes what examples/configs/sentiment.yaml reads, from the sentiment demo's own pieces: its split of the sentences
 * (train, dev, test as JSON lines), one training file per student epoch holding the training set and that epoch's
 * augmented copy (the demo's seeds and augmentation), and a link to the demo's fine-tuned teacher.
 *
 *   npm run demo                                    (once: fine-tunes the teacher into runs/demo/teacher)
 *   npx tsx examples/configs/sentiment-data.ts      (writes runs/config-demo/)
 *   npx textbrewer distill examples/configs/sentiment.yaml
 */
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { seededRng } from "../../src/data/index.js";
import { augmentSentence, DEFAULT_SETTINGS } from "../sentiment.js";
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
const teacherLink = join(outDir, "teacher");
if (existsSync(teacherLink)) rmSync(teacherLink, { recursive: true, force: true });
symlinkSync(resolve(demoDir, "teacher", marker.checkpoint), teacherLink, "dir");
console.log(
  `wrote ${outDir}/data (train ${split.train.length} + augmented, dev ${split.dev.length}, test ${split.test.length}); teacher → ${marker.checkpoint}`,
);
