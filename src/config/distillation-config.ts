/**
 * DistillationConfig: every field of TextBrewer's DistillationConfig in camelCase, with TextBrewer's defaults,
 * plus `mmdMaskedDivisor`.
 *
 * Stricter than TextBrewer: loss names are checked when the config is parsed (TextBrewer only fails when a
 * loss is first used), layer forms are checked against the loss, and a bare 'flsw'/'cwsm' temperature
 * scheduler is rejected (TextBrewer builds a broken scheduler from it).
 */
import { z } from "zod";
import { builtinLosses, lossInfo, lossNames } from "../losses/catalogue.js";
import { WEIGHT_SCHEDULERS } from "../schedules/weight.js";
import {
  type ConfigProblem,
  camelToSnake,
  parseConfig,
  readConfigJson,
  renameSnakeKeys,
  type SafeParseResult,
  suggestName,
} from "./errors.js";

const NAME = "DistillationConfig";

// ---------------------------------------------------------------------------------------------------------------
// Loss names: the worker's catalogue (losses.json) and the losses added with registerLoss

/** The worker's built-in KD losses (`kdLossType`), in its order. */
export const KD_LOSS_NAMES: readonly string[] = builtinLosses("kd").map((l) => l.name);
/** The worker's built-in match losses. */
export const MATCH_LOSS_NAMES: readonly string[] = builtinLosses("match").map((l) => l.name);

/** How a match loss takes its layers; undefined accepts both forms. */
export type LayerForm = "index" | "pair";

export function kdLossNames(): string[] {
  return lossNames("kd");
}

export function matchLossNames(): string[] {
  return lossNames("match");
}

const REGISTER_HINT = 'add a custom one with registerLoss({ name, kind, python: "file.py:fn" })';

function didYouMean(name: string, known: readonly string[]): string {
  const guess = suggestName(name, known);
  return guess === undefined ? "" : ` (did you mean '${guess}'?)`;
}

function pairLosses(): string {
  const names = matchLossNames().filter((n) => lossInfo("match", n)?.layers === "pair");
  return `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

function layerFormOf(loss: string): LayerForm | undefined {
  const layers = lossInfo("match", loss)?.layers;
  return layers === "pair" ? "pair" : layers === "single" ? "index" : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Temperature scheduler

export type TemperatureScheduler =
  | { type: "none" }
  | { type: "constant" }
  | { type: "flsw"; beta: number; gamma: number; eps: number }
  | { type: "cwsm"; beta: number };

type FlswParams = { beta: number; gamma: number; eps?: number };
type CwsmParams = { beta: number };

/** Every form TextBrewer accepts (minus the broken bare 'flsw'/'cwsm'), plus the normalised object form. */
export type TemperatureSchedulerInput =
  | "none"
  | "constant"
  | readonly ["flsw", number, number]
  | readonly ["flsw", number, number, number]
  | readonly ["cwsm", number]
  | readonly ["flsw", FlswParams]
  | readonly ["cwsm", CwsmParams]
  | { type: "none" }
  | { type: "constant" }
  | ({ type: "flsw" } & FlswParams)
  | ({ type: "cwsm" } & CwsmParams);

const DEFAULT_FLSW_EPS = 1e-4;
const flswParams = z.strictObject({ beta: z.number(), gamma: z.number(), eps: z.number().positive().optional() });
const cwsmParams = z.strictObject({ beta: z.number() });

const LIST_FORMS = "'none', 'constant', ['flsw', beta, gamma], ['cwsm', beta], ['flsw', {beta, gamma}] or ['cwsm', {beta}]";

function parseTemperatureScheduler(value: unknown, ctx: z.RefinementCtx): TemperatureScheduler {
  const fail = (message: string, path: PropertyKey[] = [], input: unknown = value): TemperatureScheduler => {
    ctx.addIssue({ code: "custom", message, path, input });
    return z.NEVER;
  };
  const fromParams = (name: "flsw" | "cwsm", params: unknown, path: PropertyKey[]): TemperatureScheduler => {
    const parsed = (name === "flsw" ? flswParams : cwsmParams).safeParse(params, { reportInput: true });
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        ctx.addIssue({
          code: "custom",
          path: [...path, ...issue.path],
          input: issue.input,
          message: describeParamIssue(name, issue),
        });
      }
      return z.NEVER;
    }
    if (name === "cwsm") return { type: "cwsm", beta: parsed.data.beta };
    const p = parsed.data as z.output<typeof flswParams>;
    return { type: "flsw", beta: p.beta, gamma: p.gamma, eps: p.eps ?? DEFAULT_FLSW_EPS };
  };

  if (value === "none" || value === "constant") return { type: value };
  if (value === "flsw" || value === "cwsm") {
    const example = value === "flsw" ? "['flsw', beta, gamma]" : "['cwsm', beta]";
    return fail(`'${value}' needs its parameters: give the list form ${example} (TextBrewer silently breaks on a bare name)`);
  }
  if (Array.isArray(value)) {
    const [name, ...args] = value as unknown[];
    if (name !== "flsw" && name !== "cwsm") {
      return fail(`the first element must be 'flsw' or 'cwsm'`, [0], name);
    }
    if (args.length === 1 && typeof args[0] === "object" && args[0] !== null) return fromParams(name, args[0], [1]);
    if (name === "flsw" && (args.length === 2 || args.length === 3)) {
      const [beta, gamma, eps] = args;
      return fromParams(name, eps === undefined ? { beta, gamma } : { beta, gamma, eps }, []);
    }
    if (name === "cwsm" && args.length === 1) return fromParams(name, { beta: args[0] }, []);
    return fail(
      name === "flsw" ? "expected ['flsw', beta, gamma] or ['flsw', {beta, gamma}]" : "expected ['cwsm', beta] or ['cwsm', {beta}]",
    );
  }
  if (typeof value === "object" && value !== null && "type" in value) {
    const { type, ...params } = value as { type: unknown };
    if ((type === "none" || type === "constant") && Object.keys(params).length === 0) return { type };
    if (type === "flsw" || type === "cwsm") return fromParams(type, params, []);
    return fail(`expected type 'none', 'constant', 'flsw' or 'cwsm'`, ["type"], type);
  }
  return fail(`expected ${LIST_FORMS}`);
}

function describeParamIssue(name: string, issue: z.core.$ZodIssue): string {
  const key = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    return `'${name}' takes no parameter ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
  }
  if (issue.input === undefined) return `'${name}' needs parameter '${key}' (a number)`;
  return `'${name}' parameter '${key}' must be ${key === "eps" ? "a number > 0" : "a number"}`;
}

const temperatureScheduler = z.custom<TemperatureSchedulerInput>(() => true).transform(parseTemperatureScheduler);

// ---------------------------------------------------------------------------------------------------------------
// Intermediate matches and projections

export const FEATURES = ["hidden", "attention"] as const;
export const PROJECTION_KINDS = ["linear", "relu", "tanh"] as const;

/** Optimizer options of a projection's parameter group. */
export const projectionGroupOptions = z.strictObject({
  lr: z.number().positive().optional(),
  weightDecay: z.number().min(0).optional(),
  betas: z.tuple([z.number(), z.number()]).optional(),
  eps: z.number().positive().optional(),
  momentum: z.number().min(0).optional(),
  dampening: z.number().min(0).optional(),
  nesterov: z.boolean().optional(),
  amsgrad: z.boolean().optional(),
  maximize: z.boolean().optional(),
});

const groupOptions = projectionGroupOptions;

/** TextBrewer JSON spells the group options as torch does. */
const GROUP_OPTION_SNAKE: Record<string, string> = Object.fromEntries(Object.keys(groupOptions.shape).map((k) => [camelToSnake(k), k]));

const projKind = z.enum(PROJECTION_KINDS);
const dim = z.int().min(1);

const projection = z
  .union(
    [
      z.tuple([projKind, dim, dim]),
      z.tuple([projKind, dim, dim, groupOptions]),
      z.strictObject({ kind: projKind, dimS: dim, dimT: dim, groupOptions: groupOptions.default({}) }),
    ],
    { error: "expected [kind, dimS, dimT] or [kind, dimS, dimT, {groupOptions}] with kind 'linear', 'relu' or 'tanh'" },
  )
  .transform((p) => (Array.isArray(p) ? { kind: p[0], dimS: p[1], dimT: p[2], groupOptions: p[3] ?? {} } : p));

const layer = z.union([z.int(), z.tuple([z.int(), z.int()])], {
  error: "expected a layer index (an integer, negative counts from the end) or a pair of indices [a, b]",
});

const matchFields = z.strictObject({
  layerT: layer,
  layerS: layer,
  feature: z.enum(FEATURES),
  loss: z.string().superRefine((name, ctx) => {
    const known = matchLossNames();
    if (!known.includes(name)) {
      ctx.addIssue({
        code: "custom",
        input: name,
        message: `unknown match loss${didYouMean(name, known)}; allowed: ${known.join(", ")} ` + `(${REGISTER_HINT})`,
      });
    }
  }),
  weight: z.number().min(0),
  proj: projection.nullish().transform((p) => p ?? null),
});

const intermediateMatch = matchFields.superRefine((m, ctx) => {
  const form = layerFormOf(m.loss);
  for (const key of ["layerT", "layerS"] as const) {
    const isPair = Array.isArray(m[key]);
    const index = String(m[key]);
    if (form === "pair" && !isPair) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        input: m[key],
        message: `loss '${m.loss}' compares pairs of layers: expected two indices, e.g. [${index}, ${index}]`,
      });
    } else if (form === "index" && isPair) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        input: m[key],
        message: `loss '${m.loss}' takes one layer index (only ${pairLosses()} take pairs)`,
      });
    }
  }
});

export type Projection = z.output<typeof projection>;
export type ProjectionGroupOptions = z.output<typeof groupOptions>;
export type IntermediateMatch = z.output<typeof intermediateMatch>;
export type IntermediateMatchInput = z.input<typeof intermediateMatch>;

// ---------------------------------------------------------------------------------------------------------------
// The config

const weightScheduler = z.enum(WEIGHT_SCHEDULERS);

const kdLossType = z.string().superRefine((name, ctx) => {
  const known = kdLossNames();
  if (!known.includes(name)) {
    ctx.addIssue({
      code: "custom",
      input: name,
      message: `unknown KD loss${didYouMean(name, known)}; allowed: ${known.join(", ")} ` + `(${REGISTER_HINT})`,
    });
  }
});

const fields = z.strictObject({
  temperature: z.number().positive().default(4),
  temperatureScheduler: temperatureScheduler.default({ type: "none" }),
  hardLabelWeight: z.number().min(0).default(0),
  hardLabelWeightScheduler: weightScheduler.default("none"),
  kdLossType: kdLossType.default("ce"),
  kdLossWeight: z.number().min(0).default(1),
  kdLossWeightScheduler: weightScheduler.default("none"),
  probabilityShift: z.boolean().default(false),
  intermediateMatches: z
    .array(intermediateMatch)
    .nullish()
    .transform((m) => m ?? []),
  isCachingLogits: z.boolean().default(false),
  /** Divisor of the masked mmd/nst Gram matrices: "hidden" (TextBrewer HEAD) or "length" (PyPI 0.2.1's bug). */
  mmdMaskedDivisor: z.enum(["hidden", "length"]).default("hidden"),
});

const schema = fields;

export type DistillationConfig = z.output<typeof schema>;
export type DistillationConfigInput = z.input<typeof schema>;

const TOP_SNAKE: Record<string, string> = Object.fromEntries(Object.keys(fields.shape).map((k) => [camelToSnake(k), k]));
const MATCH_SNAKE: Record<string, string> = {
  layer_T: "layerT",
  layer_S: "layerS",
  feature: "feature",
  loss: "loss",
  weight: "weight",
  proj: "proj",
};
const CAMEL_TO_SNAKE: Record<string, string> = Object.fromEntries(
  [TOP_SNAKE, MATCH_SNAKE, GROUP_OPTION_SNAKE].flatMap((m) => Object.entries(m)).map(([snake, camel]) => [camel, snake]),
);

function parse(input: unknown): DistillationConfig {
  const result = safeParse(input);
  if (!result.success) throw result.error;
  return result.data;
}

function safeParse(input: unknown): SafeParseResult<DistillationConfig> {
  return parseConfig(NAME, schema, fields, input);
}

/**
 * Reads the content of a TextBrewer DistillationConfig JSON file (snake_case keys, `layer_T`/`layer_S` in the
 * matches, torch spelling such as `weight_decay` in projection group options) and returns the same parsed object
 * as `parse` would for the camelCase form. A JSON string is accepted too.
 */
function fromTextBrewer(json: unknown): DistillationConfig {
  const problems: ConfigProblem[] = [];
  const top = renameSnakeKeys(readConfigJson(json, NAME), TOP_SNAKE, { configName: NAME, path: "" }, problems);
  if (top !== null && typeof top === "object" && !Array.isArray(top)) {
    const record = top as Record<string, unknown>;
    const matches = record.intermediateMatches;
    if (Array.isArray(matches)) {
      record.intermediateMatches = matches.map((m: unknown, i) => {
        const path = `intermediate_matches[${i}]`;
        const match = renameSnakeKeys(m, MATCH_SNAKE, { configName: NAME, path }, problems);
        if (match === null || typeof match !== "object" || Array.isArray(match)) return match;
        const proj = (match as Record<string, unknown>).proj;
        if (Array.isArray(proj) && proj.length === 4) {
          const where = { configName: NAME, path: `${path}.proj[3]` };
          const opts = renameSnakeKeys(proj[3], GROUP_OPTION_SNAKE, where, problems);
          return { ...match, proj: [...proj.slice(0, 3), opts] };
        }
        return match;
      });
    }
  }
  const result = parseConfig(NAME, schema, fields, top, problems, (k) => CAMEL_TO_SNAKE[k] ?? k);
  if (!result.success) throw result.error;
  return result.data;
}

export const DistillationConfig = {
  schema,
  parse,
  safeParse,
  fromTextBrewer,
  /** DistillationConfig with every default, as TextBrewer's `DistillationConfig()`. */
  defaults: (): DistillationConfig => parse({}),
} as const;
