/** The report's "Layer similarity" section: the heatmaps of a `layer-similarity.json` that `textbrewer suggest` wrote. */
import { renderHeatmap } from "./heatmap.js";

export const LAYER_SIMILARITY_FILE = "layer-similarity.json";

/** What the section reads of the file (a LayerMapSuggestion); anything else in it is ignored. */
export interface LayerSimilarityData {
  layerMap: number[];
  pairs: [number, number][];
  groups: [number, number][];
  similarity: { teacherCka: number[][]; teacherAttention?: number[][]; crossCka?: number[][]; tokens: number };
}

const isMatrix = (m: unknown): m is number[][] =>
  Array.isArray(m) && m.length > 0 && m.every((r) => Array.isArray(r) && r.every((v) => typeof v === "number"));

/** The file's content when it has the fields the section draws, else a reason. */
export function parseLayerSimilarity(json: unknown): LayerSimilarityData | string {
  const d = json as Partial<LayerSimilarityData> | null;
  if (typeof d !== "object" || d === null) return "expected a JSON object";
  if (!Array.isArray(d.layerMap) || !Array.isArray(d.pairs) || !Array.isArray(d.groups)) return "layerMap, pairs or groups missing";
  if (!isMatrix(d.similarity?.teacherCka)) return "similarity.teacherCka is not a matrix of numbers";
  return d as LayerSimilarityData;
}

export function layerSection(d: LayerSimilarityData, image: (svg: string, alt: string) => string): string {
  const n = d.similarity.teacherCka.length;
  const hidden = Array.from({ length: n }, (_, i) => (i === 0 ? "emb" : `T${i}`));
  const ends = d.groups.map(([, b]) => b);
  const figures = [
    image(
      renderHeatmap(d.similarity.teacherCka, {
        title: "Linear CKA between teacher layers",
        rowLabels: hidden,
        colLabels: hidden,
        highlight: d.groups.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, k) => [a + k, b] as const)),
      }),
      "linear CKA between teacher hidden states; framed: each layer and the end of its group",
    ),
  ];
  const att = d.similarity.teacherAttention;
  if (isMatrix(att)) {
    const labels = att.map((_, i) => `T${i + 1}`);
    figures.push(
      image(
        renderHeatmap(att, { title: "Attention-map similarity between teacher layers", rowLabels: labels, colLabels: labels }),
        "attention-map similarity between teacher layers",
      ),
    );
  }
  const cross = d.similarity.crossCka;
  if (isMatrix(cross)) {
    figures.push(
      image(
        renderHeatmap(cross, {
          title: "Linear CKA, student (rows) against teacher",
          rowLabels: cross.map((_, i) => (i === 0 ? "emb" : `S${i}`)),
          colLabels: hidden,
          highlight: d.pairs,
        }),
        "linear CKA between student and teacher hidden states; framed: the chosen matches",
      ),
    );
  }
  const text =
    `<p>Measured on ${d.similarity.tokens} tokens. Groups of teacher layers per student layer: ` +
    d.groups.map(([a, b], i) => `S${i + 1} ← T${a}–T${b}`).join(", ") +
    `; layerMap [${d.layerMap.join(", ")}]; matches ${d.pairs.map(([s, t]) => `S${s}↔T${t}`).join(", ")} (group ends ${ends.join(", ")}).</p>`;
  return [text, `<div class="plots">`, ...figures, `</div>`].join("\n");
}
