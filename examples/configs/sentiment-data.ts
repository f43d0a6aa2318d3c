/**
 * Writes what examples/configs/sentiment.yaml reads, from the sentiment demo's own pieces: its split of the sentences
 * (train, dev, test as JSON lines), one training file per student epoch holding the training set and that epoch's
 * augmented copy (the demo's seeds and augmentation), a link to the demo's fine-tuned teacher, and a link to the
 * tokenizer the demo used (the teacher's checkpoint holds weights and config only): the packaged MiniLM's, or the word
 * vocabulary of a teacher the demo trained from scratch.
 *
 *   npm run demo                                    (once: fine-tunes the teacher into runs/demo/teacher)
 *   npx tsx examples/configs/sentiment-data.ts      (writes runs/config-demo/)
 *   npx textbrewer distill examples/configs/sentiment.yaml
 */
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { seededRng, type TextExample } from "../../src/data/index.js";
import { findPackagedModel, Worker } from "../../src/index.js";
import { augmentSentence, DEFAULT_SETTINGS, type DemoSettings } from "../sentiment.js";
import { MINILM_L6 } from "../shared/minilm.js";
import { loadSentiment, splitSentiment } from "../shared/sentiment.js";
import { readTeacherMarker } from "../shared/teacher-marker.js";

export interface SentimentRunDataOptions {
  /** The demo's run folder (default runs/demo). */
  demoDir?: string;
  /** Where the run file's data and links go (default runs/config-demo). */
  outDir?: string;
  /** The demo's settings (default DEFAULT_SETTINGS); the same ones the demo ran with. */
  settings?: DemoSettings;
  /** The demo's `limit` (the first N examples of each split), when it ran with one. */
  limit?: { train?: number; dev?: number; test?: number };
  /** A worker for the packaged MiniLM's lookup (default: one started and closed here). */
  worker?: Worker;
}

export interface SentimentRunData {
  outDir: string;
  trainFiles: string[];
  teacher: string;
  tokenizer: string;
  counts: { train: number; dev: number; test: number };
}

/** Writes the demo's data and links its teacher and tokenizer, for the run file. */
export async function writeSentimentRunData(options: SentimentRunDataOptions = {}): Promise<SentimentRunData> {
  const demoDir = resolve(options.demoDir ?? "runs/demo");
  const outDir = resolve(options.outDir ?? "runs/config-demo");
  const s = options.settings ?? DEFAULT_SETTINGS;
  const teacherDir = join(demoDir, "teacher");
  const marker = readTeacherMarker(teacherDir);
  if (!marker) throw new Error(`no fine-tuned teacher in ${teacherDir}: run \`npm run demo\` first`);

  // the demo's split, cut as the demo cuts it
  const split = splitSentiment(loadSentiment(), { seed: s.seed });
  const cut = <T>(xs: T[], n?: number) => (n === undefined ? xs : xs.slice(0, n));
  const train = cut(split.train, options.limit?.train);
  const dev = cut(split.dev, options.limit?.dev);
  const test = cut(split.test, options.limit?.test);
  const lines = (rows: readonly TextExample[]) => `${rows.map((r) => JSON.stringify({ text: r.text, label: r.label })).join("\n")}\n`;
  mkdirSync(join(outDir, "data"), { recursive: true });
  writeFileSync(join(outDir, "data", "dev.jsonl"), lines(dev));
  writeFileSync(join(outDir, "data", "test.jsonl"), lines(test));
  // the demo's student epochs: the training set, then `augmentedCopies` fresh augmented copies of it (seeded per epoch)
  const trainFiles: string[] = [];
  for (let e = 0; e < s.student.epochs; e++) {
    const rng = seededRng(s.seed * 7919 + e);
    const extra = Array.from({ length: s.student.augmentedCopies }, () =>
      train.map((x) => ({ ...x, text: augmentSentence(x.text, rng) })),
    ).flat();
    const file = join(outDir, "data", `train-epoch${e}.jsonl`);
    writeFileSync(file, lines([...train, ...extra]));
    trainFiles.push(file);
  }
  const link = (name: string, target: string) => {
    const path = join(outDir, name);
    rmSync(path, { recursive: true, force: true });
    symlinkSync(target, path, "dir");
    return target;
  };
  const teacher = link("teacher", resolve(teacherDir, marker.checkpoint));
  // the demo tokenizes with the packaged MiniLM's tokenizer, or, when it fell back to a teacher trained from scratch,
  // with the word vocabulary it wrote beside that teacher
  const scratchVocab = join(teacherDir, "vocab");
  let tokenizer: string;
  if (/trained from scratch/.test(marker.teacherSource ?? "") && existsSync(scratchVocab)) {
    tokenizer = link("tokenizer", scratchVocab);
  } else {
    const worker = options.worker ?? (await Worker.start({ device: "cpu" }));
    try {
      tokenizer = link("tokenizer", (await findPackagedModel(worker, MINILM_L6)).path);
    } finally {
      if (!options.worker) await worker.close();
    }
  }
  return { outDir, trainFiles, teacher, tokenizer, counts: { train: train.length, dev: dev.length, test: test.length } };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const r = await writeSentimentRunData({
    ...(process.argv[2] ? { demoDir: process.argv[2] } : {}),
    ...(process.argv[3] ? { outDir: process.argv[3] } : {}),
  });
  console.log(
    `wrote ${r.outDir}/data (train ${r.counts.train} + augmented, dev ${r.counts.dev}, test ${r.counts.test}); teacher → ${r.teacher}; tokenizer → ${r.tokenizer}`,
  );
}
