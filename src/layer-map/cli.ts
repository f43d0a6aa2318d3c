/** `textbrewer suggest`: suggestLayerMap from the command line; writes the suggestion and a report with its heatmaps. */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { readLabelledText } from "../data/classification.js";
import { makeBatches } from "../data/collate.js";
import { buildReport } from "../report/index.js";
import { LAYER_SIMILARITY_FILE } from "../report/layer-section.js";
import { Worker } from "../worker/worker.js";
import { type LayerMapSuggestion, suggestLayerMap } from "./suggest.js";

export interface SuggestCommandOptions {
  teacher: string;
  student?: string;
  /** Labelled text (label<TAB>text lines or .jsonl); the texts are the sample, the labels are not used. */
  data: string;
  layers: number;
  outDir: string;
  maxExamples: number;
  maxLength: number;
  attentionWeight?: number;
}

/** Runs the suggestion; returns it with the paths written (`<outDir>/layer-similarity.json` and `<outDir>/report.html`). */
export async function runSuggest(o: SuggestCommandOptions): Promise<{ suggestion: LayerMapSuggestion; json: string; report: string }> {
  const texts = readLabelledText(o.data)
    .examples.slice(0, o.maxExamples)
    .map((e) => e.text);
  await using worker = await Worker.start({ device: "auto" });
  const tokenizer = await worker.loadTokenizer(o.teacher);
  const { token_type_ids: _t, ...encoded } = await tokenizer.encode(texts, {
    maxLength: o.maxLength,
    padding: "longest",
    truncation: true,
  });
  const data = makeBatches(encoded, { batchSize: 32 });
  const teacher = await worker.loadModel({ path: o.teacher, task: "base", warnNewWeights: false });
  const student = o.student ? await worker.loadModel({ path: o.student, task: "base", warnNewWeights: false }) : undefined;
  const suggestion = await suggestLayerMap({
    teacher,
    ...(student ? { student } : {}),
    data,
    numLayers: o.layers,
    ...(o.attentionWeight === undefined ? {} : { attentionWeight: o.attentionWeight }),
  });
  mkdirSync(o.outDir, { recursive: true });
  const json = resolve(join(o.outDir, LAYER_SIMILARITY_FILE));
  const tmp = `${json}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify({ teacher: o.teacher, student: o.student ?? null, data: o.data, ...suggestion }, null, 2)}\n`);
  renameSync(tmp, json);
  const report = await buildReport(o.outDir, { title: `Layer map for a ${o.layers}-layer student` });
  return { suggestion, json, report };
}

/** The lines the command prints: the layer map, the groups and the matches. */
export function formatSuggestion(s: LayerMapSuggestion): string {
  return [
    `teacher: ${s.teacherLayers} layers; student: ${s.numLayers} layers; measured on ${s.similarity.tokens} tokens`,
    `layerMap: [${s.layerMap.join(", ")}]    (createModel({ config: { num_hidden_layers: ${s.numLayers} }, initFrom: teacher, layerMap }))`,
    `groups:   ${s.groups.map(([a, b], i) => `S${i + 1} ← T${a}..T${b}`).join(", ")}`,
    `matches:  ${s.intermediateMatches.map((m) => `${m.loss} S${m.layerS}↔T${m.layerT}`).join(", ")}`,
  ].join("\n");
}
