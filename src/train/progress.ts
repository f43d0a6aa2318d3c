import { basename } from "node:path";
import cliProgress from "cli-progress";
import type { StepMetrics } from "./metrics.js";

/** A progress bar on a TTY (step/total, loss, lr, it/s, ETA); silent otherwise. */
export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly started = Date.now();

  constructor(total: number, enabled: boolean, start = 0) {
    if (!enabled) return;
    this.bar = new cliProgress.SingleBar(
      {
        format: "{bar} {value}/{total} | loss {loss} | lr {lr} | {rate} it/s | ETA {eta_formatted}",
        hideCursor: true,
        stream: process.stderr,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, start, { loss: "-", lr: "-", rate: "-" });
  }

  update(step: number, loss: number, lr: number, startStep: number): void {
    if (!this.bar) return;
    const rate = (step - startStep) / Math.max(1e-3, (Date.now() - this.started) / 1000);
    this.bar.update(step, { loss: loss.toFixed(4), lr: lr.toExponential(2), rate: rate.toFixed(2) });
  }

  stop(): void {
    this.bar?.stop();
  }
}

/** A line every this many milliseconds when `logLineEvery` is not given: a handful per minute at any step speed. */
export const DEFAULT_LOG_LINE_MS = 15_000;

export interface LogLinesOptions {
  /** Optimizer steps of the whole run. */
  total: number;
  /** The step the run starts from (0, or the resumed checkpoint's). */
  start: number;
  /** A line every N optimizer steps; undefined: every DEFAULT_LOG_LINE_MS instead. */
  every?: number;
  write?: (text: string) => void;
  now?: () => number;
}

/**
 * Plain log lines for a stderr that is no terminal (CI, a pipe, a file): one every N optimizer steps, at each
 * checkpoint and at the last step, in metrics.jsonl's names, e.g.
 * `textbrewer-ts: step=20/40 epoch=1 total=0.4213 lr=5.00e-5 gradNorm=1.27 samplesPerSecond=61.2 eta=41s`.
 */
export class LogLines {
  private readonly write: (text: string) => void;
  private readonly now: () => number;
  private readonly started: number;
  private lastLine: number;
  private samples = 0;
  /** A checkpoint step's line, printed once the checkpoint is saved. */
  private pending: string | null = null;

  constructor(private readonly o: LogLinesOptions) {
    this.write = o.write ?? ((text) => process.stderr.write(text));
    this.now = o.now ?? Date.now;
    this.started = this.now();
    this.lastLine = this.started;
  }

  /** After each optimizer step: `samples` is the number of samples of its micro-batches. */
  step(m: StepMetrics, samples: number, checkpoint: boolean): void {
    this.samples += samples;
    const now = this.now();
    if (!checkpoint && !this.due(m.step, now)) return;
    const line = this.format(m, now);
    this.samples = 0;
    this.lastLine = now;
    if (checkpoint) this.pending = line;
    else this.write(`${line}\n`);
  }

  /** After the checkpoint of the last step is written to `dir`. */
  saved(dir: string): void {
    if (this.pending === null) return;
    this.write(`${this.pending} checkpoint=${basename(dir)}\n`);
    this.pending = null;
  }

  private due(step: number, now: number): boolean {
    if (step === this.o.total) return true;
    if (this.o.every !== undefined) return step % this.o.every === 0;
    return step === this.o.start + 1 || now - this.lastLine >= DEFAULT_LOG_LINE_MS;
  }

  private format(m: StepMetrics, now: number): string {
    const { total, start } = this.o;
    const seconds = Math.max(1e-3, (now - this.lastLine) / 1000);
    const perStep = (now - this.started) / Math.max(1, m.step - start);
    const fields = [
      `step=${m.step}/${total}`,
      `epoch=${m.epoch}`,
      `total=${Number.isFinite(m.total) ? m.total.toFixed(4) : "null"}`,
      `lr=${m.lr.map((lr) => lr.toExponential(2)).join(",")}`,
      ...(m.gradNorm !== null ? [`gradNorm=${m.gradNorm.toPrecision(4)}`] : []),
      `samplesPerSecond=${(this.samples / seconds).toFixed(1)}`,
      ...(m.skippedSteps ? [`skippedSteps=${m.skippedSteps}`] : []),
      `eta=${duration(((total - m.step) * perStep) / 1000)}`,
    ];
    return `textbrewer-ts: ${fields.join(" ")}`;
  }
}

/** 3725 s → "1h02m05s", 125 → "2m05s", 7 → "7s". */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.trunc(s / 3600);
  const m = Math.trunc((s % 3600) / 60);
  const pad = (n: number): string => String(n).padStart(2, "0");
  if (h) return `${h}h${pad(m)}m${pad(s % 60)}s`;
  if (m) return `${m}m${pad(s % 60)}s`;
  return `${s % 60}s`;
}
