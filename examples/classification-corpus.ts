/**
 * The demo's recipe (examples/sentiment.ts) on your own labelled texts, with any number of classes.
 *
 *   npx tsx examples/classification-corpus.ts corpus.tsv [--run-dir runs/classification-corpus] [--teacher hf-folder]
 *   npx tsx examples/classification-corpus.ts train.tsv dev.tsv test.tsv [--header] [--text 1] [--label 0]
 *
 * Files are `label<TAB>text` lines (columns by --text/--label: indices, or names with --header) or JSON lines
 * (`.jsonl`, fields "text" and "label"); the class names come from the data. One file is split 80/10/10, stratified by
 * label, with the demo's seed; three files are train, dev and test as they are. The teacher is all-MiniLM-L6-v2 (or
 * --teacher, a Hugging Face encoder folder with tokenizer files); settings, seeds and outputs are the demo's.
 */
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type LabelledTextOptions, labelNames, readLabelledText, splitStratified, type TextData } from "../src/data/index.js";
import { DEFAULT_SETTINGS, type DemoOptions, runSentimentDemo } from "./sentiment.js";

export async function main(argv: string[], overrides: DemoOptions = {}) {
  const { values, positionals: files } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "run-dir": { type: "string", default: "runs/classification-corpus" },
      teacher: { type: "string" },
      header: { type: "boolean", default: false },
      text: { type: "string" },
      label: { type: "string" },
    },
  });
  if (files.length !== 1 && files.length !== 3)
    throw new Error(
      "usage: classification-corpus.ts <corpus> | <train> <dev> <test> [--run-dir dir] [--teacher folder] [--header] [--text col] [--label col]",
    );
  const column = (v: string | undefined) => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : v);
  const read: LabelledTextOptions = {
    header: values.header,
    ...(values.text ? { text: column(values.text)! } : {}),
    ...(values.label ? { label: column(values.label)! } : {}),
  };
  // One set of class names for all the files, then each file read against it.
  const labels = labelNames(files.flatMap((f) => readLabelledText(f, read).labels));
  const parts = files.map((f) => readLabelledText(f, { ...read, labels }).examples);
  const seed = (overrides.settings ?? DEFAULT_SETTINGS).seed;
  const split =
    parts.length === 1
      ? splitStratified(parts[0]!, (e) => String(e.label), { seed })
      : { train: parts[0]!, dev: parts[1]!, test: parts[2]! };
  const data: TextData = { ...split, labels, name: files.map((f) => basename(f)).join(", ") };
  return runSentimentDemo({
    data,
    runDir: resolve(values["run-dir"]),
    ...(values.teacher ? { teacher: { path: values.teacher } } : {}),
    ...overrides,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  });
}
