/**
 * Reads a run file (YAML or JSON: JSON is YAML too, so one parser gives both their line numbers) and checks it with
 * the same zod schemas a script goes through. Every problem names the file, its line, the path and the fix.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { isMap, LineCounter, type Node, parseDocument } from "yaml";
import { DistillationConfig } from "../config/distillation-config.js";
import { ConfigError, type ConfigProblem, zodProblems } from "../config/errors.js";
import { TrainingConfig } from "../config/training-config.js";
import { RunFile } from "./schema.js";

export interface RunFileProblem {
  line: number | null;
  /** Dotted path in the file, e.g. `distiller.distillConfig.intermediateMatches[1].layerS`. */
  path: string;
  message: string;
}

/** A run file that cannot be used: every problem with its file, line and path. */
export class RunFileError extends ConfigError {
  readonly fileProblems: readonly RunFileProblem[];

  constructor(
    readonly file: string,
    problems: readonly RunFileProblem[],
  ) {
    const fileProblems = [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    super(
      file,
      fileProblems.map((p) => ({ path: p.path, kind: "invalid_value", message: p.message })),
    );
    this.fileProblems = fileProblems;
    this.message =
      fileProblems.length === 1
        ? `Invalid run file ${renderProblem(file, fileProblems[0]!)}`
        : `Invalid run file ${file} (${fileProblems.length} problems):\n${fileProblems.map((p) => `  ${renderProblem(file, p)}`).join("\n")}`;
  }
}

function renderProblem(file: string, p: RunFileProblem): string {
  return `${file}${p.line === null ? "" : `:${p.line}`}: ${p.path === "" ? "" : `${p.path}: `}${p.message}`;
}

/** The validated run, its source file, and the configs as the distiller will parse them. */
export interface LoadedRun {
  file: string;
  run: RunFile;
  trainConfig: TrainingConfig;
  distillConfig: DistillationConfig;
}

type Segment = string | number;

/** `a.b[1].c` → ["a", "b", 1, "c"]. */
function segments(path: string): Segment[] {
  const out: Segment[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

/** The 1-based line of the node at `path` (for an unknown key, of that key), or of its nearest ancestor present. */
function lineOf(doc: ReturnType<typeof parseDocument>, counter: LineCounter, path: Segment[], key?: string): number | null {
  for (let n = path.length; n >= 0; n--) {
    const node = (n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)) as Node | null | undefined;
    if (!node) continue;
    if (key !== undefined && n === path.length && isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      const range = (pair?.key as Node | undefined)?.range;
      if (range) return counter.linePos(range[0]).line;
    }
    if (node.range) return counter.linePos(node.range[0]).line;
  }
  return null;
}

const UNKNOWN_KEY = /^unknown key '([^']+)' in \S+/;

/** Config problems (paths relative to `base`) as file problems with lines. */
function locate(
  problems: readonly ConfigProblem[],
  base: Segment[],
  doc: ReturnType<typeof parseDocument>,
  counter: LineCounter,
): RunFileProblem[] {
  return problems.map((p) => {
    const path = [...base, ...segments(p.path)];
    const unknown = p.kind === "unknown_key" ? UNKNOWN_KEY.exec(p.message) : null;
    const where = path
      .map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`))
      .join("")
      .replace(/^\./, "");
    // "unknown key 'x' in Name.path (did you mean 'y'?)": the path is given apart, so say it once
    const message = unknown ? p.message.replace(/ in \S+/, "") : p.message;
    return { line: lineOf(doc, counter, path, unknown?.[1]), path: where, message };
  });
}

/** snake_case keys (TextBrewer's JSON) go through `fromTextBrewer`; camelCase through `parse`. */
const isSnake = (value: Record<string, unknown>): boolean => Object.keys(value).some((k) => k.includes("_"));

function checkConfig<T>(
  parse: (v: unknown) => T,
  value: Record<string, unknown>,
  base: Segment[],
  doc: ReturnType<typeof parseDocument>,
  counter: LineCounter,
  problems: RunFileProblem[],
): T | undefined {
  try {
    return parse(value);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...locate(error.problems, base, doc, counter));
    return undefined;
  }
}

/** Parses and checks a run file's text; `file` names it in errors and anchors its relative paths. */
export function parseRunFile(text: string, file: string): LoadedRun {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new RunFileError(
      file,
      doc.errors.map((e) => ({
        line: counter.linePos(e.pos[0]).line,
        path: "",
        message: `not valid YAML or JSON: ${e.message.split("\n")[0]}`,
      })),
    );
  }
  const input = doc.toJS() as unknown;
  const parsed = RunFile.safeParse(input, { reportInput: true });
  if (!parsed.success) {
    throw new RunFileError(file, locate(zodProblems("run-file", parsed.error, { schema: RunFile, input }), [], doc, counter));
  }
  const run = parsed.data;
  const problems: RunFileProblem[] = [];
  const tc = run.distiller.trainConfig;
  const dc = run.distiller.distillConfig;
  const trainConfig = checkConfig(
    isSnake(tc) ? TrainingConfig.fromTextBrewer : TrainingConfig.parse,
    tc,
    ["distiller", "trainConfig"],
    doc,
    counter,
    problems,
  );
  const distillConfig = checkConfig(
    isSnake(dc) ? DistillationConfig.fromTextBrewer : DistillationConfig.parse,
    dc,
    ["distiller", "distillConfig"],
    doc,
    counter,
    problems,
  );
  if (problems.length || !trainConfig || !distillConfig) throw new RunFileError(file, problems);
  if (run.distiller.type === "BasicDistiller" && distillConfig.intermediateMatches.length) {
    throw new RunFileError(file, [
      {
        line: lineOf(doc, counter, ["distiller", "type"]),
        path: "distiller.type",
        message: "BasicDistiller takes no intermediateMatches; use GeneralDistiller or remove them",
      },
    ]);
  }
  return { file, run: resolvePaths(run), trainConfig, distillConfig };
}

/** Reads and checks a run file (.yaml, .yml or .json). */
export function loadRunFile(file: string): LoadedRun {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new RunFileError(file, [{ line: null, path: "", message: `cannot read it (${(error as NodeJS.ErrnoException).code ?? error})` }]);
  }
  return parseRunFile(text, file);
}

/**
 * Paths are relative to the current folder, as in a script run from there; the resolved run records them absolute. A
 * model path that is no file or folder but looks like a Hub id (`org/name`) is left for the worker's cache lookup.
 */
function resolvePaths(run: RunFile): RunFile {
  const at = (p: string): string => resolve(p);
  const model = (p: string): string => (!existsSync(p) && /^[\w.-]+\/[\w.-]+$/.test(p) ? p : resolve(p));
  const data = run.data;
  return {
    ...run,
    teacher: { ...run.teacher, path: model(run.teacher.path) },
    student: run.student.path ? { ...run.student, path: model(run.student.path) } : run.student,
    distiller: run.distiller.adaptor ? { ...run.distiller, adaptor: at(run.distiller.adaptor) } : run.distiller,
    data: {
      ...data,
      train: Array.isArray(data.train) ? data.train.map(at) : at(data.train),
      ...(data.dev ? { dev: at(data.dev) } : {}),
      ...(data.test ? { test: at(data.test) } : {}),
      ...(data.tokenizer ? { tokenizer: at(data.tokenizer) } : {}),
    },
    ...(run.cache?.dir ? { cache: { ...run.cache, dir: at(run.cache.dir) } } : {}),
    ...(run.output ? { output: { dir: at(run.output.dir) } } : {}),
  };
}
