/** `textbrewer-ts/report` and `textbrewer report`: a self-contained HTML page from a run folder (metrics.jsonl, gs{step}/ checkpoints, summary.json). */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type ReportOptions, renderReportHtml } from "./html.js";
import { LAYER_SIMILARITY_FILE } from "./layer-section.js";
import { METRICS_FILE, readRun, SUMMARY_FILE } from "./read-run.js";

export interface BuildReportOptions extends ReportOptions {
  /** Where to write the page (default `<runDir>/report.html`). */
  out?: string;
}

export const REPORT_FILE = "report.html";

/** Reads the run folder, renders the report and writes it atomically. Returns the written file's path. */
export async function buildReport(runDir: string, options: BuildReportOptions = {}): Promise<string> {
  const run = await readRun(runDir);
  if (!run.metricsFile.present && !run.checkpoints.length && !run.summary && !run.layerSimilarity) {
    throw new Error(
      `report: '${runDir}' has no ${METRICS_FILE}, no gs{step}/ checkpoints, no ${SUMMARY_FILE} and no ${LAYER_SIMILARITY_FILE}; is it a run's outputDir?`,
    );
  }
  const { out, ...reportOptions } = options;
  const html = renderReportHtml(run, reportOptions);
  const path = resolve(out ?? join(runDir, REPORT_FILE));
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    await writeFile(tmp, html);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return path;
}

export { EVAL_FILE, EvalFileError, type EvalResult, parseEvalResult, readEvalResult, writeEvalResult } from "./eval-file.js";
export { renderHeatmap } from "./heatmap.js";
export {
  collectPlots,
  escapeHtml,
  formatNumber,
  formatValue,
  humanize,
  type PlotSpec,
  type ReportOptions,
  renderReportHtml,
  renderTable,
} from "./html.js";
export { LAYER_SIMILARITY_FILE, type LayerSimilarityData } from "./layer-section.js";
export {
  type CheckpointInfo,
  METRICS_FILE,
  type MetricsFileInfo,
  normalizeStep,
  parseMetricsJsonl,
  type RunData,
  readRun,
  SUMMARY_FILE,
} from "./read-run.js";
export {
  escapeXml,
  formatTicks,
  logTicks,
  niceDomain,
  niceTicks,
  PALETTE,
  type PlotOptions,
  type PlotSeries,
  renderLineChart,
} from "./svg-plot.js";
