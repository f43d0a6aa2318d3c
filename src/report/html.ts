/**
 * The report page: run facts, one chart per logged quantity, the checkpoints' dev metrics, and any summary.json tables.
 * Self-contained: inline CSS, system fonts, charts as base64 SVG data URIs in <img> tags (real images, with alt text).
 */
import { basename, resolve } from "node:path";
import type { StepMetrics } from "../train/metrics.js";
import { layerSection } from "./layer-section.js";
import type { RunData } from "./read-run.js";
import { type PlotOptions, type PlotSeries, renderLineChart } from "./svg-plot.js";

export interface ReportOptions {
  title?: string;
  /** Shown in the footer (default: now). */
  generatedAt?: Date;
}

export interface PlotSpec {
  /** Stable id, e.g. "total", "term-kd_loss", "lr", "dev". */
  id: string;
  title: string;
  alt: string;
  svg: string;
}

/** Metric names where lower is better (their own chart; alt text names the minimum). */
const LOW_IS_BEST = /loss|perplexity|\bppl\b|error|latency|(^|_)(wer|cer)($|_)/i;

/** Steps past which a loss chart also gets a smoothed line over a faded raw one. */
const SMOOTH_FROM = 150;

export function escapeHtml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

const GROUPED = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const SIG4 = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4 });

/** A number for people: grouped integers, 4 significant digits, 1.2e-5 for tiny ones, 109.5M for large integers. */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (Number.isInteger(v)) {
    if (a >= 1e6) {
      const [unit, suffix] = a >= 1e12 ? [1e12, "T"] : a >= 1e9 ? [1e9, "G"] : [1e6, "M"];
      return `${SIG4.format(v / unit)}${suffix}`;
    }
    return GROUPED.format(v);
  }
  if (a < 1e-3)
    return v
      .toExponential(2)
      .replace(/\.?0+e/, "e")
      .replace("e+", "e");
  if (a >= 1e4) return GROUPED.format(v);
  return SIG4.format(v);
}

/** A table cell / fact value of any JSON type. */
export function formatValue(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return formatNumber(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v.map(formatNumber).join(", ");
  return JSON.stringify(v);
}

/** "sentencesPerSecond" / "sentences_per_second" → "sentences per second". */
export function humanize(key: string): string {
  return key
    .replace(/_/g, " ")
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .replace(/\s+/g, " ")
    .trim()
    .replace(/^(.)/, (c) => c.toUpperCase())
    .replace(/ ([A-Z])(?=[a-z])/g, (_, c: string) => ` ${c.toLowerCase()}`);
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${String(sec).padStart(2, "0")} s`;
}

function isoTime(unixSeconds: number): string {
  return Number.isFinite(unixSeconds) ? new Date(unixSeconds * 1000).toISOString().replace(/\.\d+Z$/, "Z") : "—";
}

/** Bias-corrected exponential moving average that steps over NaNs. */
function smooth(ys: readonly number[], weight: number): number[] {
  let acc = 0;
  let n = 0;
  return ys.map((y) => {
    if (!Number.isFinite(y)) return Number.NaN;
    acc = acc * weight + (1 - weight) * y;
    n++;
    return acc / (1 - weight ** n);
  });
}

function finitePairs(xs: readonly number[], ys: readonly number[]): Array<[number, number]> {
  return xs.map((x, i) => [x, ys[i] as number] as [number, number]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
}

/** Alt text: what the chart shows, its range, and where each series starts, ends and bottoms/tops out. */
function describe(
  title: string,
  xWhat: string,
  series: ReadonlyArray<{ name: string; x: readonly number[]; y: readonly number[] }>,
  lowIsBest: boolean,
): string {
  const parts = series.map((s) => {
    const pts = finitePairs(s.x, s.y);
    if (!pts.length) return `${s.name}: no finite values`;
    const [x0, y0] = pts[0] as [number, number];
    const [x1, y1] = pts[pts.length - 1] as [number, number];
    const best = pts.reduce((b, p) => ((lowIsBest ? p[1] < b[1] : p[1] > b[1]) ? p : b));
    const extreme = `${lowIsBest ? "min" : "max"} ${formatNumber(best[1])} at ${xWhat} ${best[0]}`;
    return pts.length === 1
      ? `${s.name}: ${formatNumber(y0)} at ${xWhat} ${x0}`
      : `${s.name}: ${formatNumber(y0)} at ${xWhat} ${x0} to ${formatNumber(y1)} at ${xWhat} ${x1} ` + `(${extreme}, ${pts.length} points)`;
  });
  return `Line chart, ${title}. ${parts.join("; ")}.`;
}

function lossSeries(name: string, xs: number[], ys: number[]): PlotSeries[] {
  if (xs.length < SMOOTH_FROM) return [{ name, x: xs, y: ys }];
  return [
    { name, x: xs, y: ys, opacity: 0.3, width: 1.2, markers: false },
    { name: `${name} (smoothed)`, x: xs, y: smooth(ys, 0.9), color: "#d62728", markers: false, width: 2 },
  ];
}

function chart(id: string, title: string, series: PlotSeries[], options: PlotOptions, alt: string): PlotSpec {
  const svg = renderLineChart(series, { title, description: alt, ...options });
  return { id, title, alt, svg };
}

function unique<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

function termLabel(key: string): string {
  return key.replace(/^unweighted_/, "").replace(/^weighted_/, "");
}

/** The charts for a run, in page order. */
export function collectPlots(run: RunData): PlotSpec[] {
  const plots: PlotSpec[] = [];
  const steps: StepMetrics[] = run.steps;
  const xs = steps.map((s) => s.step);
  const n = steps.length;
  const stepOpts: PlotOptions = { xLabel: "optimizer step", integerX: true };

  if (n) {
    const total = steps.map((s) => s.total);
    plots.push(
      chart(
        "total",
        "Total loss",
        lossSeries("total", xs, total),
        { ...stepOpts, yLabel: "loss", logY: "auto" },
        describe("total loss over optimizer steps", "step", [{ name: "total", x: xs, y: total }], true),
      ),
    );

    const termKeys = unique(steps.flatMap((s) => Object.keys(s.terms)));
    for (const key of termKeys) {
      const ys = steps.map((s) => s.terms[key] ?? Number.NaN);
      const label = termLabel(key);
      plots.push(
        chart(
          `term-${label}`,
          `${label} (unweighted)`,
          lossSeries(label, xs, ys),
          { ...stepOpts, yLabel: "loss", logY: "auto" },
          describe(`unweighted loss term ${label} over optimizer steps`, "step", [{ name: label, x: xs, y: ys }], true),
        ),
      );
    }

    const weightedKeys = unique(steps.flatMap((s) => Object.keys(s.weighted)));
    if (weightedKeys.length > 1) {
      // Long runs: the smoothed curves only, or the overlapping raw noise hides everything.
      const smoothed = n >= SMOOTH_FROM;
      const line = (ys: number[]): number[] => (smoothed ? smooth(ys, 0.9) : ys);
      const series: PlotSeries[] = weightedKeys.map((k) => ({
        name: termLabel(k),
        x: xs,
        y: line(steps.map((s) => s.weighted[k] ?? Number.NaN)),
        markers: false,
      }));
      series.push({ name: "total", x: xs, y: line(total), color: "#222", dashed: true, markers: false, width: 1.4 });
      const title = `Weighted loss terms (what the total adds up)${smoothed ? ", smoothed" : ""}`;
      plots.push(
        chart(
          "weighted",
          title,
          series,
          { ...stepOpts, yLabel: "loss", logY: "auto" },
          describe(`weighted loss terms and the total over optimizer steps${smoothed ? ", smoothed" : ""}`, "step", series, true),
        ),
      );
    }

    const groups = Math.max(0, ...steps.map((s) => s.lr.length));
    if (groups) {
      const perGroup = Array.from({ length: groups }, (_, g) => steps.map((s) => s.lr[g] ?? Number.NaN));
      const same = perGroup.every((ys) => ys.every((y, i) => Object.is(y, perGroup[0]?.[i])));
      const series: PlotSeries[] = same
        ? [{ name: "learning rate", x: xs, y: perGroup[0] as number[] }]
        : perGroup.map((ys, g) => ({ name: `param group ${g}`, x: xs, y: ys }));
      plots.push(
        chart(
          "lr",
          "Learning rate",
          series,
          { ...stepOpts, yLabel: "learning rate", legend: false },
          describe("learning rate over optimizer steps", "step", series, false),
        ),
      );
    }

    if (steps.some((s) => s.gradNorm !== null && Number.isFinite(s.gradNorm))) {
      const ys = steps.map((s) => s.gradNorm ?? Number.NaN);
      plots.push(
        chart(
          "grad-norm",
          "Gradient norm (before clipping)",
          lossSeries("grad norm", xs, ys),
          { ...stepOpts, yLabel: "L2 norm", logY: "auto" },
          describe("gradient norm over optimizer steps", "step", [{ name: "grad norm", x: xs, y: ys }], true),
        ),
      );
    }

    const weightSeries: PlotSeries[] = [];
    for (const key of ["kdWeight", "hardWeight"] as const) {
      const ys = steps.map((s) => s[key] ?? Number.NaN);
      const fin = ys.filter(Number.isFinite);
      if (fin.length && Math.min(...fin) !== Math.max(...fin)) {
        const name = key === "kdWeight" ? "KD loss weight" : "hard-label loss weight";
        weightSeries.push({ name, x: xs, y: ys, markers: false });
      }
    }
    if (weightSeries.length) {
      plots.push(
        chart(
          "loss-weights",
          "Scheduled loss weights",
          weightSeries,
          { ...stepOpts, yLabel: "weight", legend: true },
          describe("scheduled loss weights over optimizer steps", "step", weightSeries, false),
        ),
      );
    }
  }

  // Dev metrics at the checkpoints: scores within [0, 1] share a chart; losses and anything else get one each.
  const evaluated = run.checkpoints.filter((c) => c.eval);
  if (evaluated.length) {
    const cx = evaluated.map((c) => c.step);
    const metricKeys = unique(evaluated.flatMap((c) => Object.keys(c.eval?.metrics ?? {})));
    const valuesOf = (k: string): number[] => evaluated.map((c) => c.eval?.metrics[k] ?? Number.NaN);
    const inUnit = (v: number): boolean => !Number.isFinite(v) || (v >= 0 && v <= 1);
    const unit = metricKeys.filter((k) => !LOW_IS_BEST.test(k) && valuesOf(k).every(inUnit));
    const others = metricKeys.filter((k) => !unit.includes(k));
    if (unit.length) {
      const series: PlotSeries[] = unit.map((k) => ({ name: k, x: cx, y: valuesOf(k), markers: true }));
      plots.push(
        chart(
          "dev",
          "Dev metrics at checkpoints",
          series,
          { xLabel: "checkpoint step", yLabel: "score", legend: true, xTicks: cx },
          describe("dev-set metrics at each checkpoint", "step", series, false),
        ),
      );
    }
    for (const k of others) {
      const series: PlotSeries[] = [{ name: k, x: cx, y: valuesOf(k), markers: true }];
      const lowIsBest = LOW_IS_BEST.test(k);
      plots.push(
        chart(
          `dev-${k}`,
          `Dev ${k} at checkpoints`,
          series,
          { xLabel: "checkpoint step", yLabel: k, xTicks: cx },
          describe(`dev-set ${k} at each checkpoint`, "step", series, lowIsBest),
        ),
      );
    }
  }
  return plots;
}

function svgDataUri(svg: string): string {
  return `data:image/svg+xml;base64,${Buffer.from(svg, "utf8").toString("base64")}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A table from an array of objects; columns are the union of keys in order of first appearance. */
export function renderTable(rows: ReadonlyArray<Record<string, unknown>>, caption?: string): string {
  const cols = unique(rows.flatMap((r) => Object.keys(r)));
  const numeric = new Set(
    cols.filter((c) => rows.some((r) => typeof r[c] === "number") && rows.every((r) => r[c] == null || typeof r[c] === "number")),
  );
  const head = cols.map(
    (c) => `<th scope="col" title="${escapeHtml(c)}"${numeric.has(c) ? ` class="num"` : ""}>${escapeHtml(humanize(c))}</th>`,
  );
  const body = rows.map((r) => {
    const cells = cols.map((c) => {
      const v = r[c];
      const exact = typeof v === "number" && formatNumber(v) !== String(v) ? ` title="${escapeHtml(String(v))}"` : "";
      return `<td${numeric.has(c) ? ` class="num"` : ""}${exact}>${escapeHtml(formatValue(v))}</td>`;
    });
    return `<tr>${cells.join("")}</tr>`;
  });
  return [
    `<table>`,
    caption ? `<caption>${escapeHtml(caption)}</caption>` : "",
    `<thead><tr>${head.join("")}</tr></thead>`,
    `<tbody>`,
    ...body,
    `</tbody></table>`,
  ]
    .filter(Boolean)
    .join("\n");
}

function renderFacts(facts: ReadonlyArray<[string, string]>): string {
  return `<dl class="facts">\n${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`).join("\n")}\n</dl>`;
}

function runFacts(run: RunData): Array<[string, string]> {
  const facts: Array<[string, string]> = [];
  const e = escapeHtml;
  const steps = run.steps;
  const first = steps[0];
  const last = steps[steps.length - 1];
  if (first && last) {
    facts.push(["Optimizer steps", e(`${formatNumber(steps.length)} logged (steps ${first.step}–${last.step})`)]);
    const epochs = steps.map((s) => s.epoch).filter(Number.isFinite);
    if (epochs.length) {
      const lo = Math.min(...epochs);
      const hi = Math.max(...epochs);
      facts.push(["Epochs", e(lo === hi ? `${lo}` : `${lo}–${hi}`)]);
    }
    facts.push(["First / last step at", e(`${isoTime(first.time)} / ${isoTime(last.time)}`)]);
    facts.push(["Duration", e(`${formatDuration(last.time - first.time)} between the first and last logged step`)]);
    const sps = steps.map((s) => s.samplesPerSecond).filter(Number.isFinite);
    if (sps.length) {
      facts.push(["Throughput", e(`${formatNumber(sps.reduce((a, b) => a + b, 0) / sps.length)} samples/s (mean)`)]);
    }
    const totals = steps.filter((s) => Number.isFinite(s.total));
    if (totals.length) {
      const best = totals.reduce((b, s) => (s.total < b.total ? s : b));
      const trend = `${formatNumber(first.total)} at step ${first.step} → ${formatNumber(last.total)} at step ${last.step}`;
      facts.push(["Total loss", e(`${trend}; lowest ${formatNumber(best.total)} at step ${best.step}`)]);
    }
    const nan = steps.filter((s) => !Number.isFinite(s.total)).length;
    if (nan) facts.push(["Non-finite total loss", e(`${nan} step${nan === 1 ? "" : "s"}`)]);
  } else {
    facts.push(["Optimizer steps", run.metricsFile.present ? "none logged" : "no metrics.jsonl"]);
  }
  if (run.checkpoints.length) {
    const names = run.checkpoints.map((c) => c.name);
    const shown = names.length > 12 ? [...names.slice(0, 5), "…", ...names.slice(-5)] : names;
    facts.push(["Checkpoints", e(`${names.length}: ${shown.join(", ")}${run.latest ? ` (latest → ${run.latest})` : ""}`)]);
  } else {
    facts.push(["Checkpoints", "none"]);
  }
  const mf = run.metricsFile;
  if (mf.resumes) {
    const times = `${mf.resumes} time${mf.resumes === 1 ? "" : "s"}`;
    facts.push(["Resumed", e(`${times} (${mf.duplicateSteps} re-logged step lines superseded)`)]);
  }
  if (mf.tornLastLine) facts.push(["metrics.jsonl", "last line was cut short and ignored"]);
  return facts;
}

function termsTable(run: RunData): string {
  const keys = unique(run.steps.flatMap((s) => Object.keys(s.terms)));
  if (!keys.length) return "";
  const rows = keys.map((k) => {
    const pts = run.steps.filter((s) => Number.isFinite(s.terms[k]));
    const first = pts[0];
    const last = pts[pts.length - 1];
    const min = pts.reduce<StepMetrics | undefined>((b, s) => (!b || (s.terms[k] as number) < (b.terms[k] as number) ? s : b), undefined);
    const wk = k.replace(/^unweighted_/, "weighted_");
    return {
      term: termLabel(k),
      first: first?.terms[k] ?? null,
      last: last?.terms[k] ?? null,
      lowest: min?.terms[k] ?? null,
      lowestAtStep: min?.step ?? null,
      lastWeighted: last?.weighted[wk] ?? null,
    };
  });
  return renderTable(rows);
}

function checkpointsTable(run: RunData): string {
  if (!run.checkpoints.length) return "";
  const rows = run.checkpoints.map((c) => {
    const row: Record<string, unknown> = {
      checkpoint: c.name,
      step: c.step,
      epoch: c.state?.epoch ?? null,
      savedAt: typeof c.state?.savedAt === "string" ? c.state.savedAt.replace(/\.\d+Z$/, "Z") : null,
    };
    for (const [k, v] of Object.entries(c.eval?.metrics ?? {})) row[k] = v;
    return row;
  });
  return renderTable(rows);
}

/** Each checkpoint's eval texts (e.g. generated samples), as they are. */
function textsSection(run: RunData): string {
  const out: string[] = [];
  for (const c of run.checkpoints) {
    const texts = Object.entries(c.eval?.texts ?? {});
    if (!texts.length) continue;
    out.push(`<h3>${escapeHtml(c.name)}</h3><dl class="texts">`);
    for (const [name, text] of texts) out.push(`<dt>${escapeHtml(name)}</dt><dd><pre>${escapeHtml(text)}</pre></dd>`);
    out.push(`</dl>`);
  }
  return out.join("");
}

function summarySection(summary: Record<string, unknown>): string {
  const out: string[] = [];
  const tables = Object.entries(summary).filter(([, v]) => Array.isArray(v) && v.length > 0 && v.every(isPlainObject));
  const rest = Object.entries(summary).filter(([k]) => !tables.some(([t]) => t === k));
  tables.sort(([a], [b]) => (a === "rows" ? -1 : b === "rows" ? 1 : 0));
  for (const [key, rows] of tables) {
    out.push(renderTable(rows as Array<Record<string, unknown>>, key === "rows" ? undefined : humanize(key)));
  }
  if (rest.length) {
    const facts: Array<[string, string]> = rest.map(([k, v]) => {
      if (isPlainObject(v)) {
        const inner = Object.entries(v).map(([ik, iv]) => `${escapeHtml(humanize(ik))}: ${escapeHtml(formatValue(iv))}`);
        return [humanize(k), inner.join("; ")];
      }
      return [humanize(k), escapeHtml(formatValue(v))];
    });
    out.push(renderFacts(facts));
  }
  return out.join("\n");
}

const CSS = `
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, Helvetica, Arial, sans-serif; margin: 0;
  color: #1d1d1f; background: #f6f7f9; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 1.55rem; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.15rem; margin: 1.6em 0 0.6em; padding-bottom: 0.2em; border-bottom: 1px solid #d9dce1; }
.sub { color: #5c6370; margin: 0 0 1em; font-size: 0.92rem; word-break: break-all; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; background: #fff; padding: 12px 16px;
  border: 1px solid #e1e4e8; border-radius: 6px; }
.facts dt { color: #5c6370; }
.facts dd { margin: 0; font-variant-numeric: tabular-nums; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 14px; margin-bottom: 16px; }
h3 { font-size: 1rem; margin: 1.2em 0 0.5em; }
figure { margin: 0; background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: 6px; }
figure img { display: block; width: 100%; height: auto; }
table { border-collapse: collapse; background: #fff; font-size: 0.9rem; margin: 0 0 12px; font-variant-numeric: tabular-nums;
  border: 1px solid #e1e4e8; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { padding: 5px 12px; border-bottom: 1px solid #eceef1; text-align: left; white-space: nowrap; }
th { background: #f0f2f5; font-weight: 600; }
td.num, th.num { text-align: right; }
tbody tr:hover { background: #f7f9fc; }
.scroll { overflow-x: auto; }
.warnings { color: #8a4b00; background: #fff8e6; border: 1px solid #f1d9a6; border-radius: 6px; padding: 8px 14px 8px 30px; }
footer { color: #7a808a; font-size: 0.8rem; margin-top: 2.5em; }
`;

/** The whole page as one HTML string. */
export function renderReportHtml(run: RunData, options: ReportOptions = {}): string {
  const name = basename(resolve(run.runDir));
  const title = options.title ?? `Distillation report: ${name}`;
  const plots = collectPlots(run);
  const e = escapeHtml;
  const figure = (p: PlotSpec): string =>
    `<figure id="plot-${e(p.id)}"><img src="${svgDataUri(p.svg)}" alt="${e(p.alt)}" title="${e(p.title)}"></figure>`;
  const lossPlots = plots.filter((p) => !p.id.startsWith("dev"));
  const devPlots = plots.filter((p) => p.id.startsWith("dev"));

  const body: string[] = [];
  body.push(`<h1>${e(title)}</h1>`);
  body.push(`<p class="sub">Run folder: ${e(run.runDir)}</p>`);
  body.push(`<section id="facts"><h2>Run</h2>`, renderFacts(runFacts(run)), `</section>`);
  if (run.warnings.length) {
    body.push(`<section id="warnings"><h2>Warnings</h2><ul class="warnings">`);
    body.push(...run.warnings.map((w) => `<li>${e(w)}</li>`));
    body.push(`</ul></section>`);
  }
  if (lossPlots.length) {
    body.push(`<section id="training"><h2>Training</h2><div class="plots">`, ...lossPlots.map(figure), `</div>`);
    const terms = termsTable(run);
    if (terms) body.push(`<h3>Loss terms</h3><div class="scroll">`, terms, `</div>`);
    body.push(`</section>`);
  }
  if (run.checkpoints.length) {
    body.push(`<section id="checkpoints"><h2>Checkpoints</h2>`);
    if (devPlots.length) body.push(`<div class="plots">`, ...devPlots.map(figure), `</div>`);
    body.push(`<div class="scroll">`, checkpointsTable(run), `</div></section>`);
    const texts = textsSection(run);
    if (texts) body.push(`<section id="samples"><h2>Samples</h2>`, texts, `</section>`);
  }
  if (run.layerSimilarity) {
    const image = (svg: string, alt: string) => `<figure><img src="${svgDataUri(svg)}" alt="${e(alt)}" title="${e(alt)}"></figure>`;
    body.push(`<section id="layer-similarity"><h2>Layer similarity</h2>`, layerSection(run.layerSimilarity, image), `</section>`);
  }
  if (run.summary) {
    body.push(`<section id="summary"><h2>Summary</h2><div class="scroll">`, summarySection(run.summary), `</div></section>`);
  }
  const when = (options.generatedAt ?? new Date()).toISOString().replace(/\.\d+Z$/, "Z");
  body.push(`<footer>Generated by textbrewer-ts report at ${e(when)}.</footer>`);

  return [
    `<!DOCTYPE html>`,
    `<html lang="en">`,
    `<head>`,
    `<meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${e(title)}</title>`,
    `<style>${CSS}</style>`,
    `</head>`,
    `<body><main>`,
    ...body,
    `</main></body>`,
    `</html>`,
    ``,
  ].join("\n");
}
