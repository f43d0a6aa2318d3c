/**
 * ConfigError and the helpers that produce its problems: zod issue formatting, the unknown-key check used
 * when reading TextBrewer's snake_case JSON, and "did you mean" suggestions.
 */
import type { z } from "zod";

export interface ConfigProblem {
  /** Dotted path of the offending value, e.g. `intermediateMatches[1].layerS`; "" for the root. */
  readonly path: string;
  readonly kind: "unknown_key" | "invalid_value";
  /** For unknown keys the whole sentence; for invalid values what was received and what is allowed. */
  readonly message: string;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";

  constructor(
    readonly configName: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(renderProblems(configName, problems));
  }

  static fromZod(configName: string, error: z.ZodError, options: FormatOptions = {}): ConfigError {
    return new ConfigError(configName, zodProblems(configName, error, options));
  }
}

export interface FormatOptions {
  /** The schema that failed, used to list the allowed keys next to an unknown key. */
  readonly schema?: z.ZodType;
  /** The value that was parsed, used to show what was received when an issue does not carry it. */
  readonly input?: unknown;
  /** Spells path segments and key suggestions the way the user wrote them (snake_case for TextBrewer JSON). */
  readonly renameKey?: (key: string) => string;
}

/** The full error message for a failed parse of the config called `name`. */
export function formatZodError(name: string, error: z.ZodError, options: FormatOptions = {}): string {
  return renderProblems(name, zodProblems(name, error, options));
}

export function renderProblems(configName: string, problems: readonly ConfigProblem[]): string {
  const lines = problems.map((p) => (p.kind === "unknown_key" || p.path === "" ? p.message : `${p.path}: ${p.message}`));
  if (lines.length === 1) return `Invalid ${configName}: ${lines[0]}`;
  return `Invalid ${configName} (${lines.length} problems):\n${lines.map((l) => `  - ${l}`).join("\n")}`;
}

export function zodProblems(name: string, error: z.ZodError, options: FormatOptions = {}): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) collectIssue(name, issue, [], options, problems);
  return problems;
}

type Issue = z.core.$ZodIssue;
type Segment = PropertyKey;

function collectIssue(name: string, issue: Issue, prefix: readonly Segment[], options: FormatOptions, out: ConfigProblem[]): void {
  const path = [...prefix, ...issue.path];
  const where = formatPath(path, options.renameKey);
  const received = receivedValue(issue, path, options.input);

  switch (issue.code) {
    case "unrecognized_keys": {
      const allowed = options.schema ? objectKeysAt(options.schema, path, issue.input) : undefined;
      const spelled = allowed?.map((k) => rename(k, options.renameKey));
      const location = where === "" ? name : `${name}.${where}`;
      for (const key of issue.keys) {
        const hint = spelled ? unknownKeyHint(key, spelled) : "";
        out.push({ path: where, kind: "unknown_key", message: `unknown key '${key}' in ${location}${hint}` });
      }
      return;
    }
    case "invalid_union": {
      if (issue.discriminator !== undefined && "options" in issue && issue.options) {
        const value =
          issue.input !== null && typeof issue.input === "object"
            ? (issue.input as Record<string, unknown>)[issue.discriminator]
            : undefined;
        const tag: Received = value === undefined ? { kind: "missing" } : { kind: "value", value };
        const expected = `expected one of ${issue.options.map(showValue).join(", ")}`;
        out.push({ path: where, kind: "invalid_value", message: withReceived(tag, expected) });
        return;
      }
      const nested = issue.errors.filter((branch) => branch.length > 0 && branch.every((i) => i.path.length > 0));
      const onlyNested = nested.length === 1 ? nested[0] : undefined;
      if (onlyNested) {
        // Exactly one alternative matched the value's shape; its own complaints are the useful ones.
        for (const inner of onlyNested) collectIssue(name, inner, path, options, out);
        return;
      }
      const custom = issue.message !== "Invalid input" ? issue.message : undefined;
      const expected = custom ?? `expected ${unionExpectation(issue)}`;
      out.push({ path: where, kind: "invalid_value", message: withReceived(received, expected) });
      return;
    }
    default: {
      const traits = options.schema ? traitsAt(options.schema, path) : { integer: false, nullable: false };
      out.push({ path: where, kind: "invalid_value", message: withReceived(received, describeIssue(issue, traits)) });
    }
  }
}

interface Traits {
  readonly integer: boolean;
  readonly nullable: boolean;
}

function describeIssue(issue: Issue, traits: Traits = { integer: false, nullable: false }): string {
  const origin = "origin" in issue && issue.origin === "number" && traits.integer ? "int" : undefined;
  switch (issue.code) {
    case "invalid_type":
      return `expected ${describeType(traits.integer && issue.expected === "number" ? "int" : issue.expected)}${
        traits.nullable && issue.expected !== "null" ? " or null" : ""
      }`;
    case "too_small":
      return `expected ${describeBound(origin ?? issue.origin, issue.minimum, issue, "min")}`;
    case "too_big":
      return `expected ${describeBound(origin ?? issue.origin, issue.maximum, issue, "max")}`;
    case "invalid_value":
      return issue.values.length === 1
        ? `expected ${showValue(issue.values[0])}`
        : `expected one of ${issue.values.map(showValue).join(", ")}`;
    case "not_multiple_of":
      return `expected a multiple of ${issue.divisor}`;
    default:
      return issue.message;
  }
}

function unionExpectation(issue: z.core.$ZodIssueInvalidUnion): string {
  const alternatives = new Set<string>();
  for (const branch of issue.errors) {
    for (const inner of branch) {
      if (inner.path.length === 0) alternatives.add(describeIssue(inner).replace(/^expected /, ""));
    }
  }
  return alternatives.size > 0 ? [...alternatives].join(" or ") : "a different value";
}

function describeType(expected: string): string {
  const names: Record<string, string> = {
    number: "a number",
    int: "an integer",
    string: "a string",
    boolean: "true or false",
    array: "a list",
    tuple: "a list",
    object: "an object",
    record: "an object",
    null: "null",
    undefined: "nothing",
    function: "a function",
  };
  return names[expected] ?? expected;
}

function describeBound(
  origin: string,
  bound: number | bigint,
  { inclusive = false, exact = false }: { readonly inclusive?: boolean; readonly exact?: boolean },
  side: "min" | "max",
): string {
  const n = String(bound);
  if (origin === "array" || origin === "set") {
    if (exact) return `exactly ${n} items`;
    return side === "min" ? `at least ${n} items` : `at most ${n} items`;
  }
  if (origin === "string") {
    if (exact) return `exactly ${n} characters`;
    return side === "min" ? `at least ${n} characters` : `at most ${n} characters`;
  }
  const what = origin === "int" ? "an integer" : "a number";
  const op = side === "min" ? (inclusive ? ">=" : ">") : inclusive ? "<=" : "<";
  return `${what} ${op} ${n}`;
}

function withReceived(received: Received, expectation: string): string {
  if (received.kind === "missing") return `missing; ${expectation}`;
  if (received.kind === "unknown") return expectation;
  return `received ${showValue(received.value)}; ${expectation}`;
}

type Received = { kind: "value"; value: unknown } | { kind: "missing" } | { kind: "unknown" };

function receivedValue(issue: Issue, path: readonly Segment[], input: unknown): Received {
  if ("input" in issue) {
    return issue.input === undefined ? { kind: "missing" } : { kind: "value", value: issue.input };
  }
  if (input === undefined) return { kind: "unknown" };
  let node: unknown = input;
  for (const seg of path) {
    if (node === null || typeof node !== "object") return { kind: "unknown" };
    node = (node as Record<PropertyKey, unknown>)[seg];
  }
  return node === undefined ? { kind: "missing" } : { kind: "value", value: node };
}

/** A short JSON rendering of a received value for error messages. */
export function showValue(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "function") return "a function";
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function formatPath(path: readonly Segment[], renameKey?: (key: string) => string): string {
  let text = "";
  for (const seg of path) {
    if (typeof seg === "number") text += `[${seg}]`;
    else {
      const key = rename(String(seg), renameKey);
      text += text === "" ? key : `.${key}`;
    }
  }
  return text;
}

function rename(key: string, renameKey?: (key: string) => string): string {
  return renameKey ? renameKey(key) : key;
}

function unknownKeyHint(key: string, allowed: readonly string[]): string {
  const guess = suggestName(key, allowed);
  if (guess !== undefined) return ` (did you mean '${guess}'?)`;
  return `; allowed keys: ${allowed.join(", ")}`;
}

/** The candidate closest to `word` (ignoring case, `_` and `-`, then by edit distance), if any is close. */
export function suggestName(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, "");
  const target = norm(word);
  const exact = candidates.find((c) => norm(c) === target);
  if (exact !== undefined) return exact;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(target, norm(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const tolerance = Math.max(1, Math.floor(target.length / 4));
  return bestDistance <= tolerance ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of two neighbours ("dmeo"→"demo": 1). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i]!;
      const above = d[i - 1]!;
      row[j] = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * Renames the keys of a snake_case object (TextBrewer JSON) to the schema's camelCase keys. Keys that are not
 * in `keyMap` are dropped and reported as problems, so a camelCase key is as unknown here as a typo.
 */
export function renameSnakeKeys(
  value: unknown,
  keyMap: Readonly<Record<string, string>>,
  where: { configName: string; path: string },
  problems: ConfigProblem[],
): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const result: Record<string, unknown> = {};
  const allowed = Object.keys(keyMap);
  for (const [key, v] of Object.entries(value)) {
    const camel = Object.hasOwn(keyMap, key) ? keyMap[key] : undefined;
    if (camel === undefined) {
      const location = where.path === "" ? where.configName : `${where.configName}.${where.path}`;
      problems.push({
        path: where.path,
        kind: "unknown_key",
        message: `unknown key '${key}' in ${location}${unknownKeyHint(key, allowed)}`,
      });
    } else {
      result[camel] = v;
    }
  }
  return result;
}

/** Accepts parsed JSON as is, or JSON text (e.g. a file's content). */
export function readConfigJson(json: unknown, configName: string): unknown {
  if (typeof json !== "string") return json;
  try {
    return JSON.parse(json) as unknown;
  } catch (e) {
    throw new ConfigError(configName, [{ path: "", kind: "invalid_value", message: `not valid JSON (${(e as Error).message})` }]);
  }
}

/** `gradientAccumulationSteps` → `gradient_accumulation_steps`. */
export function camelToSnake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

interface DefLike {
  readonly type: string;
  readonly format?: unknown;
  readonly innerType?: unknown;
  readonly in?: unknown;
  readonly shape?: Readonly<Record<string, unknown>>;
  readonly element?: unknown;
  readonly items?: readonly unknown[];
  readonly options?: readonly unknown[];
  readonly values?: readonly unknown[];
  readonly getter?: () => unknown;
}

function defOf(schema: unknown): DefLike | undefined {
  return (schema as { _zod?: { def?: DefLike } } | null)?._zod?.def;
}

function unwrap(schema: unknown): unknown {
  for (let guard = 0; guard < 32; guard++) {
    const def = defOf(schema);
    if (!def) return schema;
    if (def.innerType !== undefined) schema = def.innerType;
    else if (def.type === "pipe") schema = def.in;
    else if (def.type === "lazy" && def.getter) schema = def.getter();
    else return schema;
  }
  return schema;
}

/**
 * The keys of the object schema found at `path` inside `schema` (through wrappers, arrays, tuples and unions). Of a
 * union's objects, the one whose literal keys (a discriminator such as `kind`) `value` has is preferred.
 */
export function objectKeysAt(schema: unknown, path: readonly Segment[], value?: unknown): string[] | undefined {
  const objects = descend([schema], path)
    .map((s) => defOf(unwrap(s)))
    .filter((def): def is DefLike & { shape: Readonly<Record<string, unknown>> } => def?.type === "object" && def.shape !== undefined);
  const fits = objects.find((def) => hasLiterals(def.shape, value)) ?? objects[0];
  return fits ? Object.keys(fits.shape) : undefined;
}

/** Whether `value` holds every literal of an object schema's shape (and the shape has one). */
function hasLiterals(shape: Readonly<Record<string, unknown>>, value: unknown): boolean {
  if (value === null || typeof value !== "object") return false;
  let tested = false;
  for (const [key, s] of Object.entries(shape)) {
    const def = defOf(unwrap(s));
    if (def?.type !== "literal" || !def.values) continue;
    if (!def.values.includes((value as Record<string, unknown>)[key])) return false;
    tested = true;
  }
  return tested;
}

/** Whether the schema at `path` is an integer schema and whether it accepts null (seen through wrappers). */
function traitsAt(schema: unknown, path: readonly Segment[]): Traits {
  let integer = false;
  let nullable = false;
  for (let s of descend([schema], path, false)) {
    for (let guard = 0; guard < 32; guard++) {
      const def = defOf(s);
      if (!def) break;
      if (def.type === "nullable") nullable = true;
      if (def.type === "number" && typeof def.format === "string" && def.format.includes("int")) integer = true;
      const inner = def.innerType ?? (def.type === "pipe" ? def.in : undefined);
      if (inner === undefined) break;
      s = inner;
    }
  }
  return { integer, nullable };
}

function descend(schemas: readonly unknown[], path: readonly Segment[], unwrapLast = true): unknown[] {
  let current = expandUnions(schemas);
  for (const [i, seg] of path.entries()) {
    const next: unknown[] = [];
    for (const s of current) {
      const def = defOf(s);
      if (!def) continue;
      if (def.type === "object" && def.shape && typeof seg === "string" && seg in def.shape) next.push(def.shape[seg]);
      else if (def.type === "array" && typeof seg === "number") next.push(def.element);
      else if (def.type === "tuple" && typeof seg === "number" && def.items?.[seg] !== undefined) {
        next.push(def.items[seg]);
      }
    }
    current = i === path.length - 1 && !unwrapLast ? next : expandUnions(next);
  }
  return current;
}

function expandUnions(schemas: readonly unknown[]): unknown[] {
  const result: unknown[] = [];
  for (const s of schemas) {
    const u = unwrap(s);
    const def = defOf(u);
    if (def?.type === "union" && def.options) result.push(...expandUnions(def.options));
    else result.push(u);
  }
  return result;
}

export type SafeParseResult<T> = { success: true; data: T } | { success: false; error: ConfigError };

/**
 * Parses `input` with `schema`, adding zod's problems (paths spelled with `renameKey`, allowed keys taken from
 * `fields`) to the problems found earlier (e.g. unknown snake_case keys).
 */
export function parseConfig<S extends z.ZodType>(
  name: string,
  schema: S,
  fields: z.ZodType,
  input: unknown,
  earlier: readonly ConfigProblem[] = [],
  renameKey?: (k: string) => string,
): SafeParseResult<z.output<S>> {
  const result = schema.safeParse(input, { reportInput: true });
  const problems = [...earlier];
  if (!result.success) problems.push(...zodProblems(name, result.error, { schema: fields, input, ...(renameKey ? { renameKey } : {}) }));
  if (problems.length > 0 || !result.success) return { success: false, error: new ConfigError(name, problems) };
  return { success: true, data: result.data };
}
