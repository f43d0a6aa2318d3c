import { execFile } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import {
  buildReport,
  formatNumber,
  formatTicks,
  humanize,
  logTicks,
  niceTicks,
  parseMetricsJsonl,
  readEvalResult,
  readRun,
  renderLineChart,
  writeEvalResult,
} from "../src/report/index.js";

const ROOT = new URL("..", import.meta.url).pathname;

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function tempRunDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tbts-report-"));
  made.push(dir);
  return dir;
}

/** A run folder as train() and a demo leave it: metrics.jsonl, gs{step}/ checkpoints with eval.json, summary.json. */
function makeRun(dir: string, steps = 50, { torn = true } = {}): void {
  const t0 = 1_700_000_000;
  const lines: string[] = [];
  for (let step = 1; step <= steps; step++) {
    const terms = {
      unweighted_kd_loss: 2.5 * Math.exp(-step / 15) + 0.05,
      unweighted_hard_label_loss: 1.1 * Math.exp(-step / 30) + 0.2 + 0.02 * Math.sin(step),
      unweighted_hidden_hidden_mse_2_4: 40 / step,
    };
    const weighted = {
      weighted_kd_loss: terms.unweighted_kd_loss * 0.5,
      weighted_hard_label_loss: terms.unweighted_hard_label_loss * 0.5,
      weighted_hidden_hidden_mse_2_4: terms.unweighted_hidden_hidden_mse_2_4,
    };
    const total = Object.values(weighted).reduce((a, b) => a + b, 0);
    const lr = step <= 5 ? (5e-5 * step) / 5 : 5e-5 * (1 - (step - 5) / (steps - 5));
    lines.push(
      JSON.stringify({
        step,
        epoch: Math.floor((step - 1) / 20),
        time: t0 + step * 1.5,
        total,
        terms,
        weighted,
        lr: [lr, lr],
        gradNorm: step % 10 === 0 ? null : 3 / Math.sqrt(step),
        samplesPerSecond: 120 + (step % 7),
        kdWeight: 0.5,
        hardWeight: 0.5,
      }),
    );
  }
  writeFileSync(join(dir, "metrics.jsonl"), `${lines.join("\n")}\n`);
  if (torn) appendFileSync(join(dir, "metrics.jsonl"), `{"step":${steps + 1},"epoch":2,"time":17000`);

  const evals: Array<[number, Record<string, number>]> = [
    [20, { accuracy: 0.71, f1: 0.64, eval_loss: 0.92 }],
    [40, { accuracy: 0.83, f1: 0.79, eval_loss: 0.61 }],
    [50, { accuracy: 0.86, f1: 0.82, eval_loss: 0.55 }],
  ];
  for (const [step, metrics] of evals) {
    const cp = join(dir, `gs${step}`);
    mkdirSync(cp, { recursive: true });
    writeFileSync(
      join(cp, "trainer_state.json"),
      JSON.stringify({
        version: 1,
        globalStep: step,
        epoch: Math.floor(step / 20),
        nextBatch: 0,
        savedAt: new Date(t0 * 1000 + step * 1500).toISOString(),
      }),
    );
    writeEvalResult(cp, step, metrics);
  }
  symlinkSync("gs50", join(dir, "latest"));
  // Folders the reader must ignore: an unfinished checkpoint and an unrelated one.
  mkdirSync(join(dir, ".gs60.tmp-1-2"));
  mkdirSync(join(dir, "logs"));

  writeFileSync(
    join(dir, "summary.json"),
    JSON.stringify({
      rows: [
        { model: "teacher", accuracy: 0.9123, parameters: 109_482_240, sentencesPerSecond: 812.4567, latencyMsPerBatch: 39.4 },
        { model: "student", accuracy: 0.8641, parameters: 14_350_874, sentencesPerSecond: 5210.25, latencyMsPerBatch: 6.1 },
      ],
      speedup: 6.413,
      accuracyRetained: 0.9472,
      device: "cpu",
    }),
  );
}

/** The decoded SVG documents of every <img> in the page, with their alt text. */
function images(html: string): Array<{ alt: string; svg: string }> {
  const out: Array<{ alt: string; svg: string }> = [];
  for (const m of html.matchAll(/<img\b([^>]*)>/g)) {
    const attrs = m[1] as string;
    const src = /\bsrc="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"/.exec(attrs);
    const alt = /\balt="([^"]*)"/.exec(attrs);
    out.push({ alt: alt?.[1] ?? "", svg: src ? Buffer.from(src[1] as string, "base64").toString("utf8") : "" });
  }
  return out;
}

/** A tiny well-formedness check: one root <svg>, balanced tags, no stray '<' or unescaped '&'. */
function wellFormedSvg(svg: string): boolean {
  if (!svg.startsWith(`<svg xmlns="http://www.w3.org/2000/svg"`) || !svg.trimEnd().endsWith("</svg>")) return false;
  if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(svg)) return false;
  const stack: string[] = [];
  let roots = 0;
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  const rest = svg.replace(tag, (_, close: string, name: string, _a, self: string) => {
    if (close) {
      if (stack.pop() !== name) roots = 99;
    } else if (!self) {
      if (!stack.length) roots++;
      stack.push(name);
    } else if (!stack.length) roots = 99;
    return "";
  });
  return stack.length === 0 && roots === 1 && !rest.includes("<") && !rest.includes(">");
}

function seriesPaths(svg: string): Array<{ name: string; points: number; commands: number }> {
  return [...svg.matchAll(/<path class="series" data-name="([^"]*)" data-points="(\d+)"[^>]*\sd="([^"]*)"/g)].map((m) => ({
    name: m[1] as string,
    points: Number(m[2]),
    commands: ((m[3] as string).match(/[ML]/g) ?? []).length,
  }));
}

describe("report: synthetic run folder", () => {
  const dir = tempRunDir();
  makeRun(dir);
  let html = "";
  let path = "";

  it("buildReport writes <runDir>/report.html", async () => {
    path = await buildReport(dir, { generatedAt: new Date(0) });
    expect(path).toBe(join(dir, "report.html"));
    html = readFileSync(path, "utf8");
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).toContain("<title>Distillation report: ");
    // Self-contained: nothing fetched from elsewhere.
    expect(html).not.toMatch(/<(script|link)\b|https?:\/\/(?!www\.w3\.org\/2000\/svg)|@import|url\((?!#)/);
  });

  it("has one <img> per expected plot, each a well-formed SVG with alt text", () => {
    const imgs = images(html);
    const ids = [...html.matchAll(/<figure id="plot-([^"]+)">/g)].map((m) => m[1]);
    expect(ids).toEqual([
      "total",
      "term-kd_loss",
      "term-hard_label_loss",
      "term-hidden_hidden_mse_2_4",
      "weighted",
      "lr",
      "grad-norm",
      "dev",
      "dev-eval_loss",
    ]);
    expect(imgs).toHaveLength(ids.length);
    for (const img of imgs) {
      expect(wellFormedSvg(img.svg), img.svg.slice(0, 200)).toBe(true);
      expect(img.alt).toMatch(/^Line chart, /);
    }
  });

  it("plots every step of each loss term and the total as one line with 50 points", () => {
    const imgs = images(html);
    for (const i of [0, 1, 2, 3]) {
      const paths = seriesPaths(imgs[i]!.svg);
      expect(paths).toHaveLength(1);
      expect(paths[0]).toMatchObject({ points: 50, commands: 50 });
    }
    expect(imgs[1]!.svg).toContain("kd_loss (unweighted)");
    // The weighted chart: 3 weighted terms plus the total, with a legend.
    const weighted = seriesPaths(imgs[4]!.svg);
    expect(weighted.map((p) => p.name)).toEqual(["kd_loss", "hard_label_loss", "hidden_hidden_mse_2_4", "total"]);
    expect(imgs[4]!.svg.match(/class="legend-item"/g)).toHaveLength(4);
    // The lr of both parameter groups is the same: one line.
    expect(seriesPaths(imgs[5]!.svg)).toEqual([{ name: "learning rate", points: 50, commands: 50 }]);
    // Grad norm is null every 10th step: 45 points, the line broken into 5 runs (a new M at each gap).
    const grad = seriesPaths(imgs[6]!.svg)[0]!;
    expect(grad.points).toBe(45);
    const gradD = /\sd="([^"]*)"/.exec(imgs[6]!.svg.slice(imgs[6]!.svg.indexOf('class="series"')))![1]!;
    expect(gradD.match(/M/g)).toHaveLength(5);
    // hidden_hidden_mse goes 40 → 0.8: a log axis from 0.5 to 50, not whole decades 0.1 to 100.
    expect(imgs[3]!.svg).toMatch(/log scale|\(log\)/);
    const yTicks = [...imgs[3]!.svg.matchAll(/<text [^>]*text-anchor="end">([^<]*)</g)].map((m) => m[1]);
    expect(yTicks).toEqual(["0.5", "1", "2", "5", "10", "20", "50"]);
  });

  it("plots the dev metrics at the three checkpoints, with markers", () => {
    const imgs = images(html);
    const dev = imgs[7]!.svg;
    expect(seriesPaths(dev)).toEqual([
      { name: "accuracy", points: 3, commands: 3 },
      { name: "f1", points: 3, commands: 3 },
    ]);
    expect(dev.match(/<circle /g)!.length).toBeGreaterThanOrEqual(6);
    expect(imgs[7]!.alt).toContain("accuracy: 0.71 at step 20 to 0.86 at step 50");
    expect(seriesPaths(imgs[8]!.svg)).toEqual([{ name: "eval_loss", points: 3, commands: 3 }]);
    expect(imgs[8]!.alt).toContain("min 0.55 at step 50");
  });

  it("tables: loss terms, checkpoints with their metrics, and the summary rows", () => {
    const tables = [...html.matchAll(/<table>([\s\S]*?)<\/table>/g)].map((m) => m[1] as string);
    const bodyRows = (t: string): string[] =>
      [...t.matchAll(/<tbody>([\s\S]*?)<\/tbody>/g)].flatMap((m) => (m[1] as string).match(/<tr>[\s\S]*?<\/tr>/g) ?? []);
    const terms = tables.find((t) => t.includes("hidden_hidden_mse_2_4"))!;
    expect(bodyRows(terms)).toHaveLength(3);
    const checkpoints = tables.find((t) => t.includes(">gs20<"))!;
    expect(bodyRows(checkpoints)).toHaveLength(3);
    expect(checkpoints).toContain(">Accuracy<");
    expect(bodyRows(checkpoints)[2]).toContain("<td>gs50</td>");
    const summary = tables.find((t) => t.includes(">teacher<"))!;
    const rows = bodyRows(summary);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain("<td>teacher</td>");
    expect(rows[1]).toContain("<td>student</td>");
    expect(summary).toContain(">Sentences per second<");
    expect(summary).toContain(">Latency ms per batch<");
    expect(rows[0]).toContain(`title="109482240">109.5M<`);
    expect(rows[1]).toContain(">5,210<");
    expect(html).toContain("<dt>Speedup</dt><dd>6.413</dd>");
    expect(html).toContain("<dt>Accuracy retained</dt><dd>0.9472</dd>");
  });

  it("tolerates the torn last metrics line", async () => {
    const run = await readRun(dir);
    expect(run.steps).toHaveLength(50);
    expect(run.steps.at(-1)?.step).toBe(50);
    expect(run.metricsFile).toMatchObject({ tornLastLine: true, skippedLines: 0, lines: 51 });
    expect(run.warnings).toEqual([]);
    expect(run.checkpoints.map((c) => c.name)).toEqual(["gs20", "gs40", "gs50"]);
    expect(run.latest).toBe("gs50");
    expect(html).toContain("last line was cut short and ignored");
    expect(html).toContain("50 logged (steps 1–50)");
  });

  it("writes to --out atomically, creating its folder", async () => {
    const out = join(dir, "nested", "r.html");
    expect(await buildReport(dir, { out, title: "My <run>" })).toBe(out);
    const page = readFileSync(out, "utf8");
    expect(page).toContain("<h1>My &lt;run&gt;</h1>");
    expect(existsSync(join(dir, "nested"))).toBe(true);
  });
});

describe("report: reading edge cases", () => {
  it("keeps the last line of a step logged twice (resume) and skips broken middle lines", () => {
    const line = (step: number, total: number | null): string =>
      JSON.stringify({ step, total, terms: { unweighted_kd_loss: total }, lr: [1e-4] });
    const text = [line(1, 3), line(2, 2), line(3, 1.5), line(2, 2.1), "not json", line(3, null), line(4, 1), ""].join("\n");
    const { steps, info, warnings } = parseMetricsJsonl(text);
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);
    expect(steps[1]!.total).toBe(2.1);
    expect(Number.isNaN(steps[2]!.total)).toBe(true);
    expect(info).toMatchObject({ resumes: 1, duplicateSteps: 2, skippedLines: 1, tornLastLine: false });
    expect(warnings).toEqual(["metrics.jsonl line 5: not valid JSON, skipped"]);
  });

  it("a run folder with only checkpoints, or nothing at all", async () => {
    const dir = tempRunDir();
    await expect(buildReport(dir)).rejects.toThrow(/no metrics\.jsonl/);
    await expect(buildReport(join(dir, "missing"))).rejects.toThrow(/is not a folder/);
    mkdirSync(join(dir, "gs5"));
    writeFileSync(join(dir, "gs5", "trainer_state.json"), JSON.stringify({ globalStep: 5, epoch: 0 }));
    mkdirSync(join(dir, "gs10"));
    writeFileSync(join(dir, "gs10", "eval.json"), "{ torn");
    const html = readFileSync(await buildReport(dir), "utf8");
    expect(images(html)).toHaveLength(0);
    expect(html).toContain("no metrics.jsonl");
    expect(html).toMatch(/gs10\/trainer_state\.json: missing/);
    expect(html).toMatch(/gs10.eval\.json: not valid JSON/);
  });

  it("eval.json round trip; NaN is stored as null and read back as NaN", () => {
    const dir = tempRunDir();
    const path = writeEvalResult(dir, 7, { accuracy: 0.5, loss: Number.NaN });
    expect(JSON.parse(readFileSync(path, "utf8"))).toMatchObject({ step: 7, metrics: { accuracy: 0.5, loss: null } });
    const back = readEvalResult(dir)!;
    expect(back.step).toBe(7);
    expect(back.metrics.accuracy).toBe(0.5);
    expect(Number.isNaN(back.metrics.loss)).toBe(true);
    expect(readEvalResult(join(dir, "none"))).toBeUndefined();
    expect(() => writeEvalResult(dir, 1, { bad: "x" as unknown as number })).toThrow(/must be a number/);
  });
});

describe("svg-plot", () => {
  it("nice ticks and their labels", () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1, 50, 5, true)).toEqual([10, 20, 30, 40, 50]);
    expect(niceTicks(1, 3, 8, true)).toEqual([1, 2, 3]);
    expect(logTicks(0.01, 100)).toEqual([0.01, 0.1, 1, 10, 100]);
    expect(logTicks(0.1, 1)).toEqual([0.1, 0.2, 0.3, 0.5, 1]);
    expect(logTicks(0.5, 50)).toEqual([0.5, 1, 2, 5, 10, 20, 50]);
    expect(logTicks(1e-6, 1)).toEqual([1e-6, 1e-5, 1e-4, 0.001, 0.01, 0.1, 1]);
    expect(formatTicks([0, 1e-5, 2e-5, 3e-5])).toEqual(["0", "1e-5", "2e-5", "3e-5"]);
    expect(formatTicks([0, 25000, 50000])).toEqual(["0", "25k", "50k"]);
    // Labels read back as their ticks: 2.5e-5 does not round to "3e-5", nor 12500 to "13k".
    expect(formatTicks([0, 2.5e-5, 5e-5, 7.5e-5, 1e-4])).toEqual(["0", "2.5e-5", "5e-5", "7.5e-5", "1e-4"]);
    expect(formatTicks([0, 12500, 25000, 37500])).toEqual(["0", "12.5k", "25k", "37.5k"]);
    expect(formatTicks([0, 0.25, 0.5])).toEqual(["0", "0.25", "0.50"]);
    expect(formatTicks([1e-6, 1e-4, 0.01, 1], true)).toEqual(["1e-6", "1e-4", "0.01", "1"]);
  });

  it("is NaN- and empty-safe", () => {
    const empty = renderLineChart([], { title: "nothing" });
    expect(wellFormedSvg(empty)).toBe(true);
    expect(empty).toContain("no data");
    const nan = renderLineChart([{ name: "a", x: [1, 2, 3], y: [Number.NaN, Number.NaN, Number.NaN] }]);
    expect(wellFormedSvg(nan)).toBe(true);
    expect(nan).not.toMatch(/NaN|Infinity/);
    const one = renderLineChart([{ name: "a", x: [5], y: [0.3] }], { logY: true });
    expect(wellFormedSvg(one)).toBe(true);
    expect(one).not.toMatch(/NaN|Infinity/);
    expect(one.match(/<circle /g)).toHaveLength(1);
    const flat = renderLineChart([{ name: "a & <b>", x: [1, 2, 3], y: [0, 0, 0] }], { logY: "auto", legend: true });
    expect(wellFormedSvg(flat)).toBe(true);
    expect(flat).toContain("a &amp; &lt;b&gt;");
    expect(flat).not.toMatch(/NaN|Infinity/);
  });

  it("thins very long series to about four points per pixel column", () => {
    const n = 100_000;
    const xs = Array.from({ length: n }, (_, i) => i + 1);
    const svg = renderLineChart([{ name: "loss", x: xs, y: xs.map((x) => 1 / x + (x % 2) * 0.001) }], { width: 560 });
    const drawn = Number(/data-drawn="(\d+)"/.exec(svg)![1]);
    expect(svg).toContain(`data-points="${n}"`);
    expect(drawn).toBeLessThanOrEqual(4 * 560);
    expect(svg.length).toBeLessThan(100_000);
  });

  it("number formatting and headers", () => {
    expect(formatNumber(109_482_240)).toBe("109.5M");
    expect(formatNumber(4321)).toBe("4,321");
    expect(formatNumber(0.912345)).toBe("0.9123");
    expect(formatNumber(0.0000123)).toBe("1.23e-5");
    expect(formatNumber(12345.678)).toBe("12,346");
    expect(humanize("sentencesPerSecond")).toBe("Sentences per second");
    expect(humanize("eval_loss")).toBe("Eval loss");
  });
});

describe("textbrewer report (CLI)", () => {
  it("writes the report and prints its path", async () => {
    const dir = tempRunDir();
    makeRun(dir, 30, { torn: false });
    const exec = promisify(execFile);
    const cli = (...args: string[]) => exec(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: ROOT });
    const { stdout } = await cli("report", dir);
    expect(stdout.trim()).toBe(join(dir, "report.html"));
    const html = readFileSync(join(dir, "report.html"), "utf8");
    expect(images(html).length).toBeGreaterThanOrEqual(8);

    const out = join(dir, "elsewhere.html");
    await cli("report", dir, "--out", out, "--title", "CLI run");
    expect(readFileSync(out, "utf8")).toContain("<h1>CLI run</h1>");

    const bad = await cli("report").catch((e: unknown) => e);
    expect((bad as { code: number }).code).toBe(2);
  });
});
