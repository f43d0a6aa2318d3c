import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../src/index.js";
import type { StepMetrics } from "../src/train/metrics.js";
import { parseLoopOptions } from "../src/train/options.js";
import { DEFAULT_LOG_LINE_MS, duration, LogLines } from "../src/train/progress.js";
import { makeTinyBert, tempDir } from "./helpers/fixtures.js";

const LINE =
  /^textbrewer-ts: step=(\d+)\/(\d+) epoch=(\d+) total=(\S+) lr=(\S+) gradNorm=(\S+) samplesPerSecond=(\S+) eta=(\S+)(?: checkpoint=(\S+))?$/;

interface Parsed {
  step: number;
  total: number;
  epoch: number;
  loss: string;
  lr: string;
  gradNorm: number;
  samplesPerSecond: number;
  eta: string;
  checkpoint: string | undefined;
}

/** The log lines of each run, by the `== name` marker the helper writes before it. */
function linesByRun(stderr: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let current = "";
  for (const line of stderr.split("\n")) {
    if (line.startsWith("== ")) {
      current = line.slice(3);
      out[current] = [];
    } else if (line.startsWith("textbrewer-ts: step=")) out[current]!.push(line);
  }
  return out;
}

function parse(line: string): Parsed {
  const m = LINE.exec(line);
  if (!m) throw new Error(`not a log line: ${line}`);
  return {
    step: Number(m[1]),
    total: Number(m[2]),
    epoch: Number(m[3]),
    loss: m[4]!,
    lr: m[5]!,
    gradNorm: Number(m[6]),
    samplesPerSecond: Number(m[7]),
    eta: m[8]!,
    checkpoint: m[9],
  };
}

describe("log lines when stderr is no terminal (real training run, stderr piped)", () => {
  const tmp = tempDir();
  let byRun: Record<string, string[]>;

  beforeAll(async () => {
    const modelDir = await makeTinyBert(join(tmp.path, "model"), { layers: 1, seed: 3, dropout: 0 });
    const runs = [
      { name: "every3", outputDir: join(tmp.path, "every3"), options: { logLineEvery: 3 } },
      { name: "default", outputDir: join(tmp.path, "default"), options: {} },
      { name: "off", outputDir: join(tmp.path, "off"), options: { logLineEvery: 0 } },
      { name: "bar", outputDir: join(tmp.path, "bar"), options: { progress: true } },
    ];
    const r = await execa("node", ["--import", "tsx", "test/helpers/train-log-lines.ts", modelDir, JSON.stringify(runs)], {
      env: { OMP_NUM_THREADS: "1" },
      timeout: 120_000,
    });
    byRun = linesByRun(String(r.stderr));
  }, 150_000);
  afterAll(() => tmp.cleanup());

  it("writes a line every logLineEvery steps, at each checkpoint and at the last step, agreeing with metrics.jsonl", () => {
    const lines = byRun.every3!.map(parse);
    // 2 epochs of 5 steps: every 3rd step, and the epoch checkpoints gs5 and gs10 (the last step)
    expect(lines.map((l) => l.step)).toEqual([3, 5, 6, 9, 10]);
    expect(lines.map((l) => l.checkpoint)).toEqual([undefined, "gs5", undefined, undefined, "gs10"]);
    expect(lines.map((l) => l.epoch)).toEqual([0, 0, 1, 1, 1]);
    const metrics = readFileSync(join(tmp.path, "every3", "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as StepMetrics);
    for (const line of lines) {
      const m = metrics[line.step - 1]!;
      expect(line.total).toBe(10);
      expect(line.loss).toBe(m.total.toFixed(4));
      expect(line.lr).toBe(m.lr[0]!.toExponential(2));
      expect(line.gradNorm).toBeCloseTo(m.gradNorm!, 3);
      expect(line.samplesPerSecond).toBeGreaterThan(0);
    }
    expect(lines.at(-1)!.eta).toBe("0s");
    expect(lines.at(-1)!.lr).toBe("0.00e+0"); // the linear schedule ends at 0
  });

  it("writes a line at the first step, at each checkpoint and at the last by default (a short run)", () => {
    const lines = byRun.default!.map(parse);
    expect(lines.map((l) => [l.step, l.checkpoint])).toEqual([
      [1, undefined],
      [5, "gs5"],
      [10, "gs10"],
    ]);
  });

  it("writes no line with logLineEvery 0, nor when a progress bar is asked for", () => {
    expect(byRun.off).toEqual([]);
    expect(byRun.bar).toEqual([]);
  });
});

describe("LogLines cadence", () => {
  const metrics = (step: number): StepMetrics => ({
    step,
    epoch: 0,
    time: 0,
    total: 0.5,
    terms: {},
    weighted: {},
    lr: [1e-4, 0],
    gradNorm: null,
    samplesPerSecond: 0,
  });

  it("by default writes a line at the first step, then once DEFAULT_LOG_LINE_MS have passed, and at the last", () => {
    let now = 0;
    const out: string[] = [];
    const lines = new LogLines({ total: 40, start: 0, write: (t) => out.push(t), now: () => now });
    for (let step = 1; step <= 40; step++) {
      now += 2000; // 2 s a step, 8 samples a step
      lines.step(metrics(step), 8, false);
    }
    // 15 s at 2 s a step: a line every 8th step after the first
    expect(DEFAULT_LOG_LINE_MS).toBe(15_000);
    expect(out.map((l) => Number(/step=(\d+)/.exec(l)![1]))).toEqual([1, 9, 17, 25, 33, 40]);
    expect(out[1]).toBe("textbrewer-ts: step=9/40 epoch=0 total=0.5000 lr=1.00e-4,0.00e+0 samplesPerSecond=4.0 eta=1m02s\n");
  });

  it("holds a checkpoint step's line until the checkpoint is saved, and counts from the resumed step", () => {
    let now = 0;
    const out: string[] = [];
    const lines = new LogLines({ total: 100, start: 50, every: 10, write: (t) => out.push(t), now: () => now });
    now = 5000;
    lines.step(metrics(51), 4, false);
    now = 10_000;
    lines.step(metrics(52), 4, true);
    expect(out).toEqual([]);
    lines.saved("/runs/x/gs52");
    expect(out).toEqual([
      "textbrewer-ts: step=52/100 epoch=0 total=0.5000 lr=1.00e-4,0.00e+0 samplesPerSecond=0.8 eta=4m00s checkpoint=gs52\n",
    ]);
  });

  it("formats durations", () => {
    expect([duration(7), duration(125), duration(3725)]).toEqual(["7s", "2m05s", "1h02m05s"]);
  });

  it("refuses a negative or fractional logLineEvery, naming the option", () => {
    for (const bad of [-1, 2.5]) {
      let error: unknown;
      try {
        parseLoopOptions({ optimizer: { lr: 1 }, data: [], logLineEvery: bad });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain("logLineEvery");
    }
  });
});
