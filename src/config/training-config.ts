/**
 * TrainingConfig: every field of TextBrewer's TrainingConfig in camelCase, with TextBrewer's defaults, plus
 * `mixedPrecision` and `seed`.
 *
 * Differences from TextBrewer:
 * - `device` defaults to "auto" (CUDA when available, else CPU) instead of 'cuda', which fails on CPU machines.
 * - `fp16: true` means `mixedPrecision: "fp16"` through torch.amp (no apex); after parsing `fp16` always equals
 *   `mixedPrecision === "fp16"`. `fp16OptLevel` is accepted for compatibility and ignored: torch.amp has no
 *   opt levels.
 * - The output directory is created by the training loop, not by parsing a config.
 */
import { z } from "zod";
import { type ConfigProblem, camelToSnake, parseConfig, readConfigJson, renameSnakeKeys, type SafeParseResult } from "./errors.js";

const NAME = "TrainingConfig";

const positiveInt = z.int().min(1);

const device = z.string().regex(/^(auto|cpu|mps|cuda(:\d+)?)$/, { error: 'expected "auto", "cpu", "cuda", "cuda:N" or "mps"' });

const fields = z.strictObject({
  gradientAccumulationSteps: positiveInt.default(1),
  ckptFrequency: positiveInt.default(1),
  ckptEpochFrequency: positiveInt.default(1),
  ckptSteps: positiveInt.nullable().default(null),
  logDir: z.string().nullable().default(null),
  outputDir: z.string().min(1).default("./saved_models"),
  device: device.default("auto"),
  fp16: z.boolean().default(false),
  fp16OptLevel: z.enum(["O0", "O1", "O2", "O3"]).default("O1"),
  dataParallel: z.boolean().default(false),
  localRank: z.int().min(-1).default(-1),
  mixedPrecision: z.enum(["no", "fp16", "bf16"]).default("no"),
  seed: z.int().nullable().default(null),
});

const schema = fields
  .superRefine((c, ctx) => {
    if (c.fp16 && c.mixedPrecision === "bf16") {
      ctx.addIssue({
        code: "custom",
        path: ["fp16"],
        input: c.fp16,
        message: 'fp16 asks for float16 mixed precision but mixedPrecision is "bf16"; set only one of them',
      });
    }
  })
  .transform((c) => {
    const mixedPrecision = c.fp16 ? "fp16" : c.mixedPrecision;
    return { ...c, mixedPrecision, fp16: mixedPrecision === "fp16" };
  });

export type TrainingConfig = z.output<typeof schema>;
export type TrainingConfigInput = z.input<typeof schema>;

const snakeToCamel: Record<string, string> = Object.fromEntries(Object.keys(fields.shape).map((k) => [camelToSnake(k), k]));

function parse(input: unknown): TrainingConfig {
  const result = safeParse(input);
  if (!result.success) throw result.error;
  return result.data;
}

function safeParse(input: unknown): SafeParseResult<TrainingConfig> {
  return parseConfig(NAME, schema, fields, input);
}

/**
 * Reads the content of a TextBrewer TrainingConfig JSON file (snake_case keys, as `from_json_file` takes them)
 * and returns the same parsed object as `parse` would for the camelCase form. A JSON string is accepted too.
 */
function fromTextBrewer(json: unknown): TrainingConfig {
  const problems: ConfigProblem[] = [];
  const value = renameSnakeKeys(readConfigJson(json, NAME), snakeToCamel, { configName: NAME, path: "" }, problems);
  const result = parseConfig(NAME, schema, fields, value, problems, camelToSnake);
  if (!result.success) throw result.error;
  return result.data;
}

export const TrainingConfig = {
  schema,
  parse,
  safeParse,
  fromTextBrewer,
  /** TrainingConfig with every default, as TextBrewer's `TrainingConfig()` (device "auto" aside). */
  defaults: (): TrainingConfig => parse({}),
} as const;
