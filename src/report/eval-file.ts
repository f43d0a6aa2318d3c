/**
 * gs{step}/eval.json: the dev-set metrics of one checkpoint, written by a training callback (or a demo) and read by
 * `textbrewer report`.
 *
 *   { "step": 300, "metrics": { "accuracy": 0.91, "f1": 0.88 }, "savedAt": "2025-01-01T12:00:00.000Z" }
 *
 * An optional "texts" object holds named strings shown as they are (e.g. samples a language model generated).
 *
 * Metric values are numbers; a NaN or infinite value is stored as null (JSON has no NaN) and read back as NaN.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const EVAL_FILE = "eval.json";

export interface EvalResult {
  step: number;
  metrics: Record<string, number>;
  /** ISO time of writing; absent in files written by other tools. */
  savedAt?: string;
  /** Named texts (e.g. generated samples), when the file has any. */
  texts?: Record<string, string>;
}

export class EvalFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EvalFileError";
  }
}

/** Writes `<checkpointDir>/eval.json` atomically (temporary file, then rename). Returns the file's path. */
export function writeEvalResult(
  checkpointDir: string,
  step: number,
  metrics: Record<string, number>,
  texts?: Record<string, string>,
): string {
  if (!Number.isInteger(step) || step < 0) {
    throw new EvalFileError(`writeEvalResult: step must be a non-negative integer, got ${step}`);
  }
  const clean: Record<string, number | null> = {};
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value !== "number") {
      const got = value === null ? "null" : typeof value;
      throw new EvalFileError(`writeEvalResult: metric '${name}' must be a number, got ${got}`);
    }
    clean[name] = Number.isFinite(value) ? value : null;
  }
  for (const [name, value] of Object.entries(texts ?? {})) {
    if (typeof value !== "string") throw new EvalFileError(`writeEvalResult: text '${name}' must be a string, got ${typeof value}`);
  }
  const path = join(checkpointDir, EVAL_FILE);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    const content = { step, metrics: clean, ...(texts ? { texts } : {}), savedAt: new Date().toISOString() };
    writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  return path;
}

/** Validates parsed eval.json content; `where` names the file in error messages. */
export function parseEvalResult(json: unknown, where = EVAL_FILE): EvalResult {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new EvalFileError(`${where}: expected a JSON object`);
  }
  const o = json as Record<string, unknown>;
  if (typeof o.step !== "number" || !Number.isFinite(o.step)) throw new EvalFileError(`${where}: 'step' must be a number`);
  if (typeof o.metrics !== "object" || o.metrics === null || Array.isArray(o.metrics)) {
    throw new EvalFileError(`${where}: 'metrics' must be an object of numbers`);
  }
  const metrics: Record<string, number> = {};
  for (const [name, value] of Object.entries(o.metrics as Record<string, unknown>)) {
    if (value === null) metrics[name] = Number.NaN;
    else if (typeof value === "number") metrics[name] = value;
    else throw new EvalFileError(`${where}: metric '${name}' must be a number or null, got ${typeof value}`);
  }
  const result: EvalResult = { step: o.step, metrics };
  if (typeof o.savedAt === "string") result.savedAt = o.savedAt;
  if (o.texts !== undefined) {
    if (typeof o.texts !== "object" || o.texts === null || Array.isArray(o.texts)) {
      throw new EvalFileError(`${where}: 'texts' must be an object of strings`);
    }
    const texts: Record<string, string> = {};
    for (const [name, value] of Object.entries(o.texts as Record<string, unknown>)) {
      if (typeof value !== "string") throw new EvalFileError(`${where}: text '${name}' must be a string, got ${typeof value}`);
      texts[name] = value;
    }
    result.texts = texts;
  }
  return result;
}

/** Reads `<checkpointDir>/eval.json`; undefined when there is none, EvalFileError when it is malformed. */
export function readEvalResult(checkpointDir: string): EvalResult | undefined {
  const path = join(checkpointDir, EVAL_FILE);
  if (!existsSync(path)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new EvalFileError(`${path}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return parseEvalResult(json, path);
}
