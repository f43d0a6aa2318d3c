/**
 * A heatmap of a matrix of values in [0, 1] (layer similarities) as a standalone SVG: one cell per entry, coloured
 * from white (0) to dark blue (1), with the value written in each cell, row labels on the left and column labels below.
 * Cells named in `highlight` get a red frame (e.g. the chosen layer pairs).
 */
import { escapeXml } from "./svg-plot.js";

export interface HeatmapOptions {
  title: string;
  rowLabels: readonly string[];
  colLabels: readonly string[];
  rowTitle?: string;
  colTitle?: string;
  /** [row, col] cells to frame. */
  highlight?: readonly (readonly [number, number])[];
}

const FONT = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif";

function colour(v: number): string {
  const t = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0));
  const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
  return `rgb(${mix(255, 8)},${mix(255, 48)},${mix(255, 107)})`;
}

export function renderHeatmap(matrix: readonly (readonly number[])[], options: HeatmapOptions): string {
  const rows = matrix.length;
  const cols = matrix[0]?.length ?? 0;
  const cell = Math.max(22, Math.min(44, Math.floor(440 / Math.max(rows, cols, 1))));
  const left = 56;
  const top = 34;
  const width = left + cols * cell + 16;
  const height = top + rows * cell + 46;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" font-size="14" text-anchor="middle">${escapeXml(options.title)}</text>`,
  ];
  const frames = new Set((options.highlight ?? []).map(([r, c]) => `${r},${c}`));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = matrix[r]![c]!;
      const x = left + c * cell;
      const y = top + r * cell;
      out.push(
        `<rect class="cell" data-row="${r}" data-col="${c}" x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${colour(v)}"/>`,
      );
      const ink = v > 0.55 ? "#fff" : "#222";
      out.push(
        `<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" font-size="${cell >= 34 ? 11 : 9}" text-anchor="middle" fill="${ink}">${Number.isFinite(v) ? v.toFixed(2) : "–"}</text>`,
      );
    }
  }
  for (const key of frames) {
    const [r, c] = key.split(",").map(Number) as [number, number];
    out.push(
      `<rect class="chosen" x="${left + c * cell + 1}" y="${top + r * cell + 1}" width="${cell - 2}" height="${cell - 2}" fill="none" stroke="#d62728" stroke-width="2.5"/>`,
    );
  }
  options.rowLabels.forEach((label, r) => {
    out.push(`<text x="${left - 6}" y="${top + r * cell + cell / 2 + 4}" font-size="11" text-anchor="end">${escapeXml(label)}</text>`);
  });
  options.colLabels.forEach((label, c) => {
    out.push(
      `<text x="${left + c * cell + cell / 2}" y="${top + rows * cell + 15}" font-size="11" text-anchor="middle">${escapeXml(label)}</text>`,
    );
  });
  if (options.colTitle) {
    out.push(
      `<text x="${left + (cols * cell) / 2}" y="${height - 8}" font-size="12" text-anchor="middle">${escapeXml(options.colTitle)}</text>`,
    );
  }
  if (options.rowTitle) {
    const cy = top + (rows * cell) / 2;
    out.push(
      `<text x="14" y="${cy}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${cy})">${escapeXml(options.rowTitle)}</text>`,
    );
  }
  out.push(`</svg>`);
  return out.join("\n");
}
