/**
 * The layer-mapping assistant on the sentiment demo: the demo's hand-chosen layer map and matches against the ones
 * suggestLayerMap measures on the fine-tuned teacher, each distilled with the demo's recipe, everything else fixed.
 * The choice is read on dev; the test figures the demo prints are not used to choose.
 *
 *   npx tsx examples/layer-map-sentiment.ts [runDir] [--train N]
 *
 * (default runs/layer-map; a teacher and two demo students on CPU; `--train N` uses the first N training sentences
 * only, for a shorter comparison on a busy machine; dev and test stay whole)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { findPackagedModel, loadSentiment, MINILM_L6, makeBatches, splitSentiment, suggestLayerMap, Worker } from "../src/index.js";
import { DEFAULT_SETTINGS, runSentimentDemo } from "./sentiment.js";
import { readTeacherMarker } from "./shared/teacher-marker.js";

const args = process.argv.slice(2);
const trainFlag = args.indexOf("--train");
const trainLimit = trainFlag >= 0 ? Number(args.splice(trainFlag, 2)[1]) : undefined;
const limit = trainLimit === undefined ? {} : { limit: { train: trainLimit } };
const runDir = resolve(args[0] ?? "runs/layer-map");
mkdirSync(runDir, { recursive: true });
await using worker = await Worker.start({ device: "cpu" });
const log = (line: string) => console.log(line);

// 1. The demo as it is (this also fine-tunes the teacher, kept in runDir/teacher for the second run).
const hand = await runSentimentDemo({ runDir, worker, log, progress: false, ...limit });

// 2. The suggestion, measured on 256 training sentences with the fine-tuned teacher.
const marker = readTeacherMarker(join(runDir, "teacher"))!;
const teacher = await worker.loadModel({ path: join(runDir, "teacher", marker.checkpoint), task: "sequence-classification" });
const { path } = await findPackagedModel(worker, MINILM_L6);
const tokenizer = await worker.loadTokenizer(path);
const sample = splitSentiment(loadSentiment(), { seed: DEFAULT_SETTINGS.seed }).train.slice(0, 256);
const { token_type_ids: _t, ...enc } = await tokenizer.encode(
  sample.map((e) => e.text),
  { maxLength: DEFAULT_SETTINGS.maxLength, padding: "longest", truncation: true },
);
const suggestion = await suggestLayerMap({
  teacher,
  data: makeBatches(enc, { batchSize: 64 }),
  numLayers: DEFAULT_SETTINGS.student.layers,
});
await teacher.dispose();
log(`suggested: layerMap [${suggestion.layerMap.join(", ")}], matches ${suggestion.pairs.map(([s, t]) => `S${s}↔T${t}`).join(", ")}`);

// 3. The demo with the suggested map and matches; everything else as before.
const settings = {
  ...DEFAULT_SETTINGS,
  student: { ...DEFAULT_SETTINGS.student, layerMap: suggestion.layerMap, matches: suggestion.intermediateMatches },
};
const suggested = await runSentimentDemo({ runDir, worker, log, progress: false, settings, ...limit });

const row = (name: string, s: typeof hand, layerMap: number[], matches: string) => ({
  name,
  layerMap,
  matches,
  devAccuracy: s.rows[1]!.devAccuracy,
  testAccuracy: s.rows[1]!.testAccuracy,
});
const result = {
  trainLimit: trainLimit ?? null,
  hand: row(
    "hand-chosen",
    hand,
    DEFAULT_SETTINGS.student.layerMap,
    DEFAULT_SETTINGS.student.matches.map((m) => `S${m.layerS}↔T${m.layerT}`).join(", "),
  ),
  suggested: row("suggested", suggested, suggestion.layerMap, suggestion.pairs.map(([s, t]) => `S${s}↔T${t}`).join(", ")),
  suggestion,
};
writeFileSync(join(runDir, "layer-map-comparison.json"), `${JSON.stringify(result, null, 2)}\n`);
for (const r of [result.hand, result.suggested]) {
  log(
    `${r.name.padEnd(12)} layerMap [${r.layerMap.join(", ")}]  matches ${r.matches}  dev ${(100 * r.devAccuracy).toFixed(1)}%  test ${(100 * r.testAccuracy).toFixed(1)}%`,
  );
}
