/**
 * Reads what a training run left in its output folder: metrics.jsonl, the gs{step}/ checkpoints (trainer_state.json and an
 * optional eval.json each), and an optional summary.json a demo writes. Nothing here needs a worker or Python.
 *
 * metrics.jsonl is read forgivingly: a torn last line (a run killed mid-write) is dropped, other unreadable lines are skipped
 * with a warning, and a step logged twice (a run resumed from a checkpoint re-runs the steps after it) keeps its last line.
 */
import { readdir, readFile, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import type { TrainerState } from "../train/checkpoint.js";
import { TRAINER_STATE } from "../train/checkpoint.js";
import type { StepMetrics } from "../train/metrics.js";
import { EVAL_FILE, type EvalResult, readEvalResult } from "./eval-file.js";
import { LAYER_SIMILARITY_FILE, type LayerSimilarityData, parseLayerSimilarity } from "./layer-section.js";

export const METRICS_FILE = "metrics.jsonl";
export const SUMMARY_FILE = "summary.json";

export interface MetricsFileInfo {
  present: boolean;
  /** Non-empty lines in the file. */
  lines: number;
  /** The last line was cut short and ignored. */
  tornLastLine: boolean;
  /** Other lines that could not be read. */
  skippedLines: number;
  /** Lines superseded by a later line for the same step. */
  duplicateSteps: number;
  /** Times the step number went backwards (a resume). */
  resumes: number;
}

export interface CheckpointInfo {
  /** Folder name, e.g. "gs300". */
  name: string;
  dir: string;
  step: number;
  state?: Partial<TrainerState>;
  eval?: EvalResult;
}

export interface RunData {
  runDir: string;
  /** One entry per optimizer step, sorted by step. Loss values logged as null (NaN in training) are NaN here. */
  steps: StepMetrics[];
  metricsFile: MetricsFileInfo;
  /** Sorted by step. */
  checkpoints: CheckpointInfo[];
  /** Folder name the `latest` link points to, when there is one. */
  latest?: string;
  /** summary.json's content, when present and an object. */
  summary?: Record<string, unknown>;
  /** layer-similarity.json (written by `textbrewer suggest`), when present and readable. */
  layerSimilarity?: LayerSimilarityData;
  warnings: string[];
}

function num(v: unknown, fallback = Number.NaN): number {
  return typeof v === "number" ? v : v === null ? Number.NaN : fallback;
}

function numRecord(v: unknown): Record<string, number> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return {};
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === "number" || x === null) out[k] = num(x);
  return out;
}

/** One metrics.jsonl object → StepMetrics, or undefined when it has no usable step number. */
export function normalizeStep(raw: unknown): StepMetrics | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  if (typeof o.step !== "number" || !Number.isFinite(o.step)) return undefined;
  const lr = Array.isArray(o.lr) ? o.lr.map((v) => num(v)) : typeof o.lr === "number" ? [o.lr] : [];
  const m: StepMetrics = {
    step: o.step,
    epoch: num(o.epoch),
    time: num(o.time),
    total: num(o.total),
    terms: numRecord(o.terms),
    weighted: numRecord(o.weighted),
    lr,
    gradNorm: typeof o.gradNorm === "number" ? o.gradNorm : null,
    samplesPerSecond: num(o.samplesPerSecond),
  };
  if (typeof o.kdWeight === "number") m.kdWeight = o.kdWeight;
  if (typeof o.hardWeight === "number") m.hardWeight = o.hardWeight;
  return m;
}

/** Parses metrics.jsonl text. */
export function parseMetricsJsonl(text: string): { steps: StepMetrics[]; info: MetricsFileInfo; warnings: string[] } {
  const info: MetricsFileInfo = { present: true, lines: 0, tornLastLine: false, skippedLines: 0, duplicateSteps: 0, resumes: 0 };
  const warnings: string[] = [];
  const lines = text.split("\n");
  const lastIndex = lines.findLastIndex((l) => l.trim() !== "");
  const byStep = new Map<number, StepMetrics>();
  let prev = Number.NEGATIVE_INFINITY;
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    info.lines++;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      if (i === lastIndex) info.tornLastLine = true;
      else {
        info.skippedLines++;
        warnings.push(`${METRICS_FILE} line ${i + 1}: not valid JSON, skipped`);
      }
      return;
    }
    const m = normalizeStep(parsed);
    if (!m) {
      if (i === lastIndex && !text.endsWith("\n")) {
        info.tornLastLine = true;
        return;
      }
      info.skippedLines++;
      warnings.push(`${METRICS_FILE} line ${i + 1}: no numeric 'step', skipped`);
      return;
    }
    if (m.step <= prev) info.resumes++;
    prev = m.step;
    if (byStep.has(m.step)) info.duplicateSteps++;
    byStep.set(m.step, m);
  });
  const steps = [...byStep.values()].sort((a, b) => a.step - b.step);
  return { steps, info, warnings };
}

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, "utf8"));
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Reads a run folder. Throws when the folder does not exist; a folder without any run files gives an empty RunData. */
export async function readRun(runDir: string): Promise<RunData> {
  if (!(await isDir(runDir))) throw new Error(`report: '${runDir}' is not a folder`);
  const warnings: string[] = [];

  let steps: StepMetrics[] = [];
  let metricsFile: MetricsFileInfo = {
    present: false,
    lines: 0,
    tornLastLine: false,
    skippedLines: 0,
    duplicateSteps: 0,
    resumes: 0,
  };
  let metricsText: string | undefined;
  try {
    metricsText = await readFile(join(runDir, METRICS_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") warnings.push(`${METRICS_FILE}: ${(error as Error).message}`);
  }
  if (metricsText !== undefined) {
    const parsed = parseMetricsJsonl(metricsText);
    steps = parsed.steps;
    metricsFile = parsed.info;
    warnings.push(...parsed.warnings);
  }

  const checkpoints: CheckpointInfo[] = [];
  for (const name of await readdir(runDir)) {
    const match = /^gs(\d+)$/.exec(name);
    if (!match) continue;
    const dir = join(runDir, name);
    if (!(await isDir(dir))) continue;
    const cp: CheckpointInfo = { name, dir, step: Number(match[1]) };
    try {
      const state = (await readJson(join(dir, TRAINER_STATE))) as Partial<TrainerState>;
      if (typeof state === "object" && state !== null) cp.state = state;
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : (error as Error).message;
      warnings.push(`${name}/${TRAINER_STATE}: ${why}`);
    }
    try {
      const ev = readEvalResult(dir);
      if (ev) {
        cp.eval = ev;
        if (ev.step !== cp.step) {
          warnings.push(`${name}/${EVAL_FILE}: says step ${ev.step}, plotted at the folder's step ${cp.step}`);
        }
      }
    } catch (error) {
      warnings.push((error as Error).message.replace(runDir, "").replace(/^[/\\]/, ""));
    }
    checkpoints.push(cp);
  }
  checkpoints.sort((a, b) => a.step - b.step);

  let latest: string | undefined;
  try {
    latest = await readlink(join(runDir, "latest"));
  } catch {
    latest = undefined;
  }

  let summary: Record<string, unknown> | undefined;
  try {
    const s = await readJson(join(runDir, SUMMARY_FILE));
    if (typeof s === "object" && s !== null && !Array.isArray(s)) summary = s as Record<string, unknown>;
    else warnings.push(`${SUMMARY_FILE}: expected a JSON object, ignored`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") warnings.push(`${SUMMARY_FILE}: ${(error as Error).message}`);
  }

  let layerSimilarity: LayerSimilarityData | undefined;
  try {
    const parsed = parseLayerSimilarity(await readJson(join(runDir, LAYER_SIMILARITY_FILE)));
    if (typeof parsed === "string") warnings.push(`${LAYER_SIMILARITY_FILE}: ${parsed}, ignored`);
    else layerSimilarity = parsed;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") warnings.push(`${LAYER_SIMILARITY_FILE}: ${(error as Error).message}`);
  }

  const run: RunData = { runDir, steps, metricsFile, checkpoints, warnings };
  if (layerSimilarity !== undefined) run.layerSimilarity = layerSimilarity;
  if (latest !== undefined) run.latest = latest;
  if (summary !== undefined) run.summary = summary;
  return run;
}
