/**
 * A small, dependency-free line-chart renderer: series over a numeric x axis, to a complete standalone SVG document.
 *
 * Axes get "nice" ticks (1/2/5 × 10^k, decades on a log axis), a title, axis labels, and a legend below the plot when there
 * is more than one series. Non-finite points (and non-positive ones on a log axis) break the line instead of poisoning it;
 * a chart with nothing to draw still renders its frame with a "no data" note. Very long series are thinned per pixel column
 * (first/min/max/last kept), so a 100k-step run stays a small image with the same envelope.
 *
 * Each series' line is one `<path class="series" data-name=… data-points=N>` whose `d` has one M/L command per drawn point;
 * markers are `<circle>`s in a `<g class="markers">`.
 */

export interface PlotSeries {
  name: string;
  x: readonly number[];
  y: readonly number[];
  color?: string;
  /** Dots at each point. Default: on when the series has at most 40 drawable points. */
  markers?: boolean;
  /** Draw the connecting line (default true). */
  line?: boolean;
  /** Line width in px (default 1.8). */
  width?: number;
  opacity?: number;
  dashed?: boolean;
}

export interface PlotOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Total image width in px (default 560). */
  width?: number;
  /** Height of the chart without the legend, in px (default 320). */
  height?: number;
  /** Log-scale y. "auto": when every drawable value is positive and they span at least a factor of 30. Default false. */
  logY?: boolean | "auto";
  /** Force the y range to include these values (e.g. 0 and 1 for accuracies). */
  yInclude?: readonly number[];
  /** Preferred x ticks (e.g. the checkpoint steps), used instead of round numbers when their labels don't collide. */
  xTicks?: readonly number[];
  /** Only integer ticks on x (steps). Default true. */
  integerX?: boolean;
  /** Legend even for a single series (default: only for two or more). */
  legend?: boolean;
  /** Becomes the SVG's <desc>. */
  description?: string;
}

export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

const FONT = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif";
const TICK_FONT = 11;
const TITLE_FONT = 14;
const LABEL_FONT = 12;
const CHAR_W = 0.62; // average glyph width / font size for the fonts above (generous, so estimates don't overlap)
const AUTO_MARKER_LIMIT = 40;

/** Escapes text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] as string);
}

function textWidth(s: string, fontSize: number): number {
  return s.length * fontSize * CHAR_W;
}

function truncate(s: string, maxWidth: number, fontSize: number): string {
  const maxChars = Math.max(4, Math.floor(maxWidth / (fontSize * CHAR_W)));
  return s.length <= maxChars ? s : `${s.slice(0, maxChars - 1)}…`;
}

/** 1, 2, 2.5 or 5 × 10^k nearest above `raw`. */
function niceStep(raw: number, integer: boolean): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  const m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 && !(integer && pow < 10) ? 2.5 : f <= 5 ? 5 : 10;
  const step = m * pow;
  return integer ? Math.max(1, Math.round(step)) : step;
}

/** Round numbers inside [min, max], about `count` of them. */
export function niceTicks(min: number, max: number, count = 5, integer = false): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min > max) [min, max] = [max, min];
  if (min === max) return [min];
  const step = niceStep((max - min) / Math.max(1, count), integer);
  const out: number[] = [];
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  for (let i = first; i <= last && out.length < 1000; i++) out.push(cleanFloat(i * step));
  return out;
}

/** Expands [min, max] outward to multiples of a nice step; returns the domain and its ticks. */
export function niceDomain(min: number, max: number, count = 5): { min: number; max: number; ticks: number[] } {
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    min -= pad;
    max += pad;
  }
  const step = niceStep((max - min) / count, false);
  const lo = cleanFloat(Math.floor(min / step + 1e-9) * step);
  const hi = cleanFloat(Math.ceil(max / step - 1e-9) * step);
  return { min: lo, max: hi, ticks: niceTicks(lo, hi, count) };
}

/** The largest 1, 2 or 5 × 10^k at or below v (> 0). */
function logFloor(v: number): number {
  const pow = 10 ** Math.floor(Math.log10(v) + 1e-9);
  const f = v / pow;
  return cleanFloat((f >= 5 - 1e-9 ? 5 : f >= 2 - 1e-9 ? 2 : 1) * pow);
}

/** The smallest 1, 2 or 5 × 10^k at or above v (> 0). */
function logCeil(v: number): number {
  const pow = 10 ** Math.floor(Math.log10(v) + 1e-9);
  const f = v / pow;
  return cleanFloat((f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10) * pow);
}

/** Tick values for a log axis over [min, max] (both > 0): decades, with 2 and 5, or 3, in between when the span is short. */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min) + 1e-9);
  const hi = Math.ceil(Math.log10(max) - 1e-9);
  const span = Math.log10(max / min);
  const inside = (v: number): boolean => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
  const out: number[] = [];
  if (span <= 3.5) {
    const mults = span <= 1 ? [1, 2, 3, 5] : span <= 2 ? [1, 2, 5] : [1, 3];
    for (let e = lo; e <= hi; e++) for (const m of mults) if (inside(cleanFloat(m * 10 ** e))) out.push(cleanFloat(m * 10 ** e));
  } else {
    const every = Math.ceil(span / 7);
    for (let e = lo; e <= hi; e++) if (e % every === 0 && inside(cleanFloat(10 ** e))) out.push(cleanFloat(10 ** e));
  }
  return out;
}

function cleanFloat(v: number): number {
  return v === 0 ? 0 : Number.parseFloat(v.toPrecision(12));
}

function trimZeros(s: string): string {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

function formatExp(v: number, digits: number): string {
  const [mant, exp] = v.toExponential(digits).split("e") as [string, string];
  return `${trimZeros(mant)}e${exp.replace(/^\+/, "")}`;
}

/** Formats all of an axis' ticks in one consistent style, as short as they can be while staying distinct. */
export function formatTicks(ticks: readonly number[], log = false): string[] {
  if (!ticks.length) return [];
  const maxAbs = Math.max(...ticks.map(Math.abs));
  const nonzero = ticks.filter((t) => t !== 0).map(Math.abs);
  const minAbs = nonzero.length ? Math.min(...nonzero) : 0;
  const gaps = ticks.slice(1).map((t, i) => Math.abs(t - (ticks[i] as number)));
  const step = gaps.length ? Math.min(...gaps.filter((g) => g > 0), maxAbs || 1) : maxAbs || 1;
  // A labelling is good when its labels are distinct and each reads back as its tick (2.5e-5 must not print as 3e-5).
  const exact = (labels: string[], unit = 1): boolean =>
    new Set(labels).size === labels.length &&
    labels.every((l, i) => Math.abs(Number.parseFloat(l) * unit - (ticks[i] as number)) <= step * 1e-6 || ticks[i] === 0);

  if (log) {
    if (maxAbs < 1e4 && minAbs >= 1e-3) return ticks.map((t) => String(cleanFloat(t)));
    return ticks.map((t) => (t >= 1e-3 && t < 1e4 ? String(cleanFloat(t)) : formatExp(t, 0)));
  }
  if (maxAbs >= 1e4) {
    const [unit, suffix] = maxAbs >= 1e9 ? [1e9, "G"] : maxAbs >= 1e6 ? [1e6, "M"] : [1e3, "k"];
    for (let d = 0; d <= 4; d++) {
      const labels = ticks.map((t) => (t === 0 ? "0" : trimZeros((t / unit).toFixed(d)) + suffix));
      if (exact(labels, unit)) return labels;
    }
  }
  if ((minAbs > 0 && maxAbs < 1e-3) || step < 1e-4) {
    for (let d = 0; d <= 6; d++) {
      const labels = ticks.map((t) => (t === 0 ? "0" : formatExp(t, d)));
      if (exact(labels)) return labels;
    }
  }
  let decimals = 0;
  while (decimals < 8 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6 * 10 ** decimals) decimals++;
  return ticks.map((t) => (t === 0 ? "0" : t.toFixed(decimals)));
}

interface Pt {
  x: number;
  y: number;
}

/** Per pixel column, keeps the first, lowest, highest and last point (in their original order). */
function thin(points: Pt[], maxPoints: number, px: (x: number) => number): Pt[] {
  if (points.length <= maxPoints) return points;
  const out: Pt[] = [];
  let bucket: Pt[] = [];
  let col = Number.NaN;
  const flush = (): void => {
    if (!bucket.length) return;
    let lo = 0;
    let hi = 0;
    bucket.forEach((p, i) => {
      if (p.y < (bucket[lo] as Pt).y) lo = i;
      if (p.y > (bucket[hi] as Pt).y) hi = i;
    });
    for (const i of [...new Set([0, lo, hi, bucket.length - 1])].sort((a, b) => a - b)) out.push(bucket[i] as Pt);
    bucket = [];
  };
  for (const p of points) {
    const c = Math.floor(px(p.x));
    if (c !== col) {
      flush();
      col = c;
    }
    bucket.push(p);
  }
  flush();
  return out;
}

function fmt(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** Renders the series to a standalone SVG document string. */
export function renderLineChart(series: readonly PlotSeries[], options: PlotOptions = {}): string {
  const W = Math.max(200, options.width ?? 560);
  const H = Math.max(150, options.height ?? 320);
  const integerX = options.integerX ?? true;

  // Which points can be drawn at all.
  const finite = series.map((s) => {
    const n = Math.min(s.x.length, s.y.length);
    const pts: Array<Pt | null> = [];
    for (let i = 0; i < n; i++) {
      const x = s.x[i] as number;
      const y = s.y[i] as number;
      pts.push(Number.isFinite(x) && Number.isFinite(y) ? { x, y } : null);
    }
    return pts;
  });
  const allY = finite.flatMap((pts) => pts.filter((p): p is Pt => p !== null).map((p) => p.y));
  const positives = allY.filter((y) => y > 0);
  let log: boolean;
  if (options.logY === "auto") {
    log = allY.length >= 2 && positives.length === allY.length && Math.max(...positives) / Math.min(...positives) >= 30;
  } else {
    log = options.logY === true && positives.length > 0;
  }
  const drawable = finite.map((pts) => pts.map((p) => (p && (!log || p.y > 0) ? p : null)));
  const pointsOf = drawable.map((pts) => pts.filter((p): p is Pt => p !== null));
  const xs = pointsOf.flatMap((pts) => pts.map((p) => p.x));
  const ys = pointsOf.flatMap((pts) => pts.map((p) => p.y));
  const empty = ys.length === 0;

  // Y domain and ticks.
  let yMin: number;
  let yMax: number;
  let yTicks: number[];
  if (empty) {
    [yMin, yMax, yTicks] = [0, 1, [0, 0.5, 1]];
  } else if (log) {
    const lo = Math.min(...ys, ...(options.yInclude ?? []).filter((v) => v > 0));
    const hi = Math.max(...ys, ...(options.yInclude ?? []).filter((v) => v > 0));
    yMin = logFloor(lo);
    yMax = logCeil(hi);
    if (yMin === yMax) [yMin, yMax] = [logFloor(yMin * 0.99), logCeil(yMax * 1.01)];
    yTicks = logTicks(yMin, yMax);
    if (yTicks.length < 2) [yMin, yMax, yTicks] = [logFloor(yMin * 0.99), logCeil(yMax * 1.01), logTicks(yMin, yMax)];
  } else {
    const inc = (options.yInclude ?? []).filter(Number.isFinite);
    const d = niceDomain(Math.min(...ys, ...inc), Math.max(...ys, ...inc), 5);
    [yMin, yMax, yTicks] = [d.min, d.max, d.ticks];
  }
  const yLabels = formatTicks(yTicks, log);

  // X domain and ticks. Charts with markers get a little room at the sides, so the end dots are whole.
  const dataXMin = empty ? 0 : Math.min(...xs);
  const dataXMax = empty ? 1 : Math.max(...xs);
  let xMin = dataXMin;
  let xMax = dataXMax;
  if (xMin === xMax) {
    xMin -= 1;
    xMax += 1;
  }
  const markersOf = series.map((s, i) => s.markers ?? (pointsOf[i] as Pt[]).length <= AUTO_MARKER_LIMIT);
  if (series.some((_, i) => markersOf[i] && (pointsOf[i] as Pt[]).length)) {
    const pad = (xMax - xMin) * 0.03;
    xMin -= pad;
    xMax += pad;
  }
  const integerTicks = integerX && Number.isInteger(dataXMin) && Number.isInteger(dataXMax);

  // Layout.
  const title = options.title ? truncate(options.title, W - 20, TITLE_FONT) : "";
  const top = title ? 34 : 12;
  const yTickW = Math.max(...yLabels.map((l) => textWidth(l, TICK_FONT)), 10);
  const left = Math.ceil(yTickW + 14 + (options.yLabel ? LABEL_FONT + 10 : 0));
  const right = 22;
  const bottom = 26 + (options.xLabel ? LABEL_FONT + 10 : 0);
  const plotW = W - left - right;
  const plotH = H - top - bottom;

  const px = (x: number): number => left + ((x - xMin) / (xMax - xMin)) * plotW;
  const xTickCount = Math.max(2, Math.min(8, Math.floor(plotW / 70)));
  let xTicks = niceTicks(xMin, xMax, xTickCount, integerTicks);
  let xLabels = formatTicks(xTicks);
  // Fewer ticks until the labels fit with room to spare.
  for (let c = xTickCount - 1; c >= 1; c--) {
    const widest = Math.max(...xLabels.map((l) => textWidth(l, TICK_FONT)), 0);
    if (xTicks.length <= 1 || (widest + 14) * xTicks.length <= plotW) break;
    xTicks = niceTicks(xMin, xMax, c, integerTicks);
    xLabels = formatTicks(xTicks);
  }
  // Preferred ticks (say, the checkpoint steps) when their labels don't collide.
  if (options.xTicks?.length) {
    const want = [...new Set(options.xTicks.filter((t) => Number.isFinite(t) && t >= xMin && t <= xMax))].sort((a, b) => a - b);
    const labels = want.map((t) => formatTicks([t])[0] as string);
    const fits = want.every((t, i) => {
      if (i === 0) return true;
      const gap = px(t) - px(want[i - 1] as number);
      return gap >= (textWidth(labels[i] as string, TICK_FONT) + textWidth(labels[i - 1] as string, TICK_FONT)) / 2 + 8;
    });
    if (want.length && fits) {
      xTicks = want;
      xLabels = labels;
    }
  }
  const py = log
    ? (y: number): number => top + plotH - ((Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH
    : (y: number): number => top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;

  // Legend rows below the x axis.
  const showLegend = series.length > 1 || (options.legend === true && series.length > 0);
  const legendItems = showLegend ? series.map((s, i) => ({ s, i, label: truncate(s.name, W - 60, LABEL_FONT), w: 0 })) : [];
  const legendRows: Array<typeof legendItems> = [];
  {
    let row: typeof legendItems = [];
    let used = 0;
    for (const item of legendItems) {
      item.w = 28 + textWidth(item.label, LABEL_FONT) + 16;
      if (row.length && used + item.w > W - 20) {
        legendRows.push(row);
        row = [];
        used = 0;
      }
      row.push(item);
      used += item.w;
    }
    if (row.length) legendRows.push(row);
  }
  const legendH = legendRows.length ? legendRows.length * 20 + 6 : 0;
  const totalH = H + legendH;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${totalH}" viewBox="0 0 ${W} ${totalH}" ` +
      `font-family="${FONT}" font-size="${TICK_FONT}">`,
  );
  if (options.title) out.push(`<title>${escapeXml(options.title)}</title>`);
  if (options.description) out.push(`<desc>${escapeXml(options.description)}</desc>`);
  // Clip to the plot area plus a marker's radius, so end dots stay whole.
  const clip = `<rect x="${left - 6}" y="${top - 6}" width="${plotW + 12}" height="${plotH + 12}"/>`;
  out.push(`<defs><clipPath id="plot-area">${clip}</clipPath></defs>`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  if (title) {
    out.push(
      `<text x="${W / 2}" y="22" text-anchor="middle" font-size="${TITLE_FONT}" font-weight="bold" fill="#222">` +
        `${escapeXml(title)}</text>`,
    );
  }

  // Grid and y ticks.
  out.push(`<g class="y-axis" fill="#444">`);
  yTicks.forEach((t, i) => {
    const y = py(t);
    if (!Number.isFinite(y)) return;
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${fmt(y)}" y2="${fmt(y)}" stroke="#e4e4e4" stroke-width="1"/>`);
    const label = escapeXml(yLabels[i] as string);
    out.push(`<text x="${left - 7}" y="${fmt(y + TICK_FONT * 0.35)}" text-anchor="end">${label}</text>`);
  });
  out.push(`</g>`);
  out.push(`<g class="x-axis" fill="#444">`);
  xTicks.forEach((t, i) => {
    const x = px(t);
    out.push(`<line x1="${fmt(x)}" x2="${fmt(x)}" y1="${top}" y2="${top + plotH}" stroke="#efefef" stroke-width="1"/>`);
    out.push(`<line x1="${fmt(x)}" x2="${fmt(x)}" y1="${top + plotH}" y2="${top + plotH + 4}" stroke="#888" stroke-width="1"/>`);
    out.push(`<text x="${fmt(x)}" y="${top + plotH + 17}" text-anchor="middle">${escapeXml(xLabels[i] as string)}</text>`);
  });
  out.push(`</g>`);
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999" stroke-width="1"/>`);

  if (options.xLabel) {
    out.push(
      `<text x="${fmt(left + plotW / 2)}" y="${H - 8}" text-anchor="middle" font-size="${LABEL_FONT}" fill="#333">` +
        `${escapeXml(truncate(options.xLabel, plotW, LABEL_FONT))}</text>`,
    );
  }
  if (options.yLabel) {
    const cy = top + plotH / 2;
    out.push(
      `<text x="${LABEL_FONT + 2}" y="${fmt(cy)}" text-anchor="middle" font-size="${LABEL_FONT}" fill="#333" ` +
        `transform="rotate(-90 ${LABEL_FONT + 2} ${fmt(cy)})">${escapeXml(truncate(options.yLabel, plotH, LABEL_FONT))}` +
        `${log ? " (log)" : ""}</text>`,
    );
  } else if (log) {
    out.push(`<text x="${left + 4}" y="${top + 13}" font-size="10" fill="#888">log scale</text>`);
  }

  if (empty) {
    out.push(
      `<text x="${fmt(left + plotW / 2)}" y="${fmt(top + plotH / 2)}" text-anchor="middle" font-size="${LABEL_FONT}" ` +
        `fill="#888">no data</text>`,
    );
  }

  // Series.
  out.push(`<g clip-path="url(#plot-area)">`);
  series.forEach((s, si) => {
    const color = s.color ?? PALETTE[si % PALETTE.length];
    const pts = drawable[si] as Array<Pt | null>;
    const count = (pointsOf[si] as Pt[]).length;
    const opacity = s.opacity !== undefined ? ` stroke-opacity="${s.opacity}"` : "";
    if (s.line !== false) {
      // Contiguous runs of drawable points; each run thinned on its own.
      const runs: Pt[][] = [];
      let run: Pt[] = [];
      for (const p of pts) {
        if (p) run.push(p);
        else if (run.length) {
          runs.push(run);
          run = [];
        }
      }
      if (run.length) runs.push(run);
      const drawn = runs.map((r) => thin(r, Math.ceil(plotW * 4), px));
      const d = drawn.map((r) => r.map((p, i) => `${i === 0 ? "M" : "L"}${fmt(px(p.x))} ${fmt(py(p.y))}`).join(" ")).join(" ");
      const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
      out.push(
        `<path class="series" data-name="${escapeXml(s.name)}" data-points="${count}" ` +
          `data-drawn="${drawn.reduce((a, r) => a + r.length, 0)}" d="${d}" fill="none" stroke="${color}" ` +
          `stroke-width="${s.width ?? 1.8}" stroke-linejoin="round" stroke-linecap="round"${opacity}${dash}/>`,
      );
    }
    if (markersOf[si] && count) {
      out.push(`<g class="markers" data-name="${escapeXml(s.name)}" fill="${color}" stroke="#fff" stroke-width="1">`);
      for (const p of pointsOf[si] as Pt[]) out.push(`<circle cx="${fmt(px(p.x))}" cy="${fmt(py(p.y))}" r="3.5"/>`);
      out.push(`</g>`);
    }
  });
  out.push(`</g>`);

  // Legend.
  legendRows.forEach((row, r) => {
    const y = H + 4 + r * 20;
    const rowW = row.reduce((a, it) => a + it.w, 0) - 16;
    let x = Math.max(10, (W - rowW) / 2);
    for (const it of row) {
      const color = it.s.color ?? PALETTE[it.i % PALETTE.length];
      const dash = it.s.dashed ? ` stroke-dasharray="5 3"` : "";
      out.push(`<g class="legend-item">`);
      const faded = it.s.opacity !== undefined ? ` stroke-opacity="${Math.max(0.45, it.s.opacity)}"` : "";
      out.push(
        `<line x1="${fmt(x)}" x2="${fmt(x + 22)}" y1="${y + 6}" y2="${y + 6}" stroke="${color}" ` + `stroke-width="2.5"${dash}${faded}/>`,
      );
      if (markersOf[it.i]) {
        out.push(`<circle cx="${fmt(x + 11)}" cy="${y + 6}" r="3.5" fill="${color}" stroke="#fff" stroke-width="1"/>`);
      }
      out.push(`<text x="${fmt(x + 28)}" y="${y + 10}" font-size="${LABEL_FONT}" fill="#333">${escapeXml(it.label)}</text>`);
      out.push(`</g>`);
      x += it.w;
    }
  });

  out.push(`</svg>`);
  return out.join("\n");
}
