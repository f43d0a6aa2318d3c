/**
 * The layer-mapping assistant on the sentiment demo: the demo's hand-chosen layer map and matches against the ones
 * suggestLayerMap measures on the fine-tuned teacher, each distilled with the demo's recipe, everything else fixed.
 * The choice is read on dev; the test figure is printed for the record, not used to choose.
 *
 *   npx tsx examples/layer-map-sentiment.ts [runDir] [--variant hand|suggested|both] [--train N] [--epochs N]
 *
 * runDir defaults to runs/layer-map; the fine-tuned teacher is kept in <runDir>/teacher and reused (copy that folder to
 * run the variants side by side in two folders). `--train N` uses the first N training sentences only and `--epochs N`
 * sets the student's epochs, for a shorter comparison on a busy machine; dev and test stay whole.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { makeBatches } from "../src/data/index.js";
import { suggestLayerMap } from "../src/guidance/index.js";
import { findPackagedModel, type IntermediateMatchInput, Worker } from "../src/index.js";
import { DEFAULT_SETTINGS, type DemoSettings, runSentimentDemo } from "./sentiment.js";
import { MINILM_L6 } from "./shared/minilm.js";
import { loadSentiment, splitSentiment } from "./shared/sentiment.js";
import { readTeacherMarker } from "./shared/teacher-marker.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { variant: { type: "string", default: "both" }, train: { type: "string" }, epochs: { type: "string" } },
});
const runDir = resolve(positionals[0] ?? "runs/layer-map");
const limit = values.train === undefined ? {} : { limit: { train: Number(values.train) } };
const base: DemoSettings = {
  ...DEFAULT_SETTINGS,
  student: { ...DEFAULT_SETTINGS.student, epochs: values.epochs === undefined ? DEFAULT_SETTINGS.student.epochs : Number(values.epochs) },
};
mkdirSync(runDir, { recursive: true });
await using worker = await Worker.start({ device: "cpu" });
const log = (line: string) => console.log(line);
const pairs = (matches: IntermediateMatchInput[]) => matches.map((m) => `S${m.layerS}↔T${m.layerT}`).join(", ");

async function distil(name: string, settings: DemoSettings) {
  const summary = await runSentimentDemo({ runDir, worker, log, progress: false, settings, ...limit });
  const row = {
    name,
    layerMap: settings.student.layerMap,
    matches: pairs(settings.student.matches),
    devAccuracy: summary.rows[1]!.devAccuracy,
    testAccuracy: summary.rows[1]!.testAccuracy,
    teacherTestAccuracy: summary.rows[0]!.testAccuracy,
    trainLimit: values.train ?? null,
    epochs: settings.student.epochs,
  };
  writeFileSync(join(runDir, `layer-map-${name}.json`), `${JSON.stringify(row, null, 2)}\n`);
  log(
    `${name}: layerMap [${row.layerMap.join(", ")}], matches ${row.matches}: dev ${(100 * row.devAccuracy).toFixed(1)}%, test ${(100 * row.testAccuracy).toFixed(1)}%`,
  );
}

// The hand-chosen recipe (its run also fine-tunes the teacher when runDir has none).
if (values.variant !== "suggested") await distil("hand", base);

if (values.variant !== "hand") {
  // The suggestion, measured on 256 training sentences with the fine-tuned teacher (fine-tuned here if still missing).
  if (!readTeacherMarker(join(runDir, "teacher")))
    await runSentimentDemo({
      runDir,
      worker,
      log,
      progress: false,
      settings: { ...base, student: { ...base.student, epochs: 1 } },
      ...limit,
    });
  const marker = readTeacherMarker(join(runDir, "teacher"))!;
  const teacher = await worker.loadModel({ path: join(runDir, "teacher", marker.checkpoint), task: "sequence-classification" });
  const tokenizer = await worker.loadTokenizer((await findPackagedModel(worker, MINILM_L6)).path);
  const sample = splitSentiment(loadSentiment(), { seed: base.seed }).train.slice(0, 256);
  const { token_type_ids: _t, ...enc } = await tokenizer.encode(
    sample.map((e) => e.text),
    { maxLength: base.maxLength, padding: "longest", truncation: true },
  );
  const suggestion = await suggestLayerMap({ teacher, data: makeBatches(enc, { batchSize: 64 }), numLayers: base.student.layers });
  await Promise.all([teacher.dispose(), tokenizer.dispose()]);
  writeFileSync(join(runDir, "layer-similarity.json"), `${JSON.stringify(suggestion, null, 2)}\n`);
  log(`suggested: layerMap [${suggestion.layerMap.join(", ")}], matches ${pairs(suggestion.intermediateMatches)}`);
  await distil("suggested", {
    ...base,
    student: { ...base.student, layerMap: suggestion.layerMap, matches: suggestion.intermediateMatches },
  });
}
