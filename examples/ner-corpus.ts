/**
 * The NER recipe of examples/ner.ts on your own CoNLL files: the label set, columns and documents come from the data.
 *
 *   npx tsx examples/ner-corpus.ts corpus.conll [--run-dir runs/ner-corpus] [--tag-column -1] [--teacher hf-folder]
 *   npx tsx examples/ner-corpus.ts train.conll dev.conll test.conll [...]
 *
 * One file is split 80/10/10 by document (-DOCSTART- lines), or by sentence, with a warning, when it has too few
 * documents; three files are train, dev and test as they are. The teacher is all-MiniLM-L6-v2 (or --teacher, a Hugging
 * Face encoder folder with tokenizer files); settings, seeds and outputs are those of examples/ner.ts.
 */
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { conllLabels, readConll, splitByDocument } from "../src/data/index.js";
import { NER_SETTINGS, type NerData, type NerRunOptions, runNer } from "./ner.js";

export async function main(argv: string[], overrides: NerRunOptions = {}) {
  const { values, positionals: files } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "run-dir": { type: "string", default: "runs/ner-corpus" },
      "tag-column": { type: "string", default: "-1" },
      teacher: { type: "string" },
    },
  });
  if (files.length !== 1 && files.length !== 3)
    throw new Error("usage: ner-corpus.ts <corpus.conll> | <train> <dev> <test> [--run-dir dir] [--tag-column n] [--teacher folder]");
  const corpora = files.map((f) => readConll(f, { tagColumn: Number(values["tag-column"]) }));
  const seed = (overrides.settings ?? NER_SETTINGS).seed;
  const warn = (m: string) => (overrides.log ?? console.warn)(`warning: ${m}`);
  const split =
    corpora.length === 1
      ? splitByDocument(corpora[0]!, { seed, fallback: "sentences", warn })
      : { train: corpora[0]!.sentences, dev: corpora[1]!.sentences, test: corpora[2]!.sentences };
  const data: NerData = {
    ...split,
    labels: conllLabels(corpora.flatMap((c) => c.sentences)),
    name: files.map((f) => basename(f)).join(", "),
  };
  return runNer({
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
