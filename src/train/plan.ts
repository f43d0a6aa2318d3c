/**
 * The training plan: what `train_configure` sends the worker once per run. The models and adaptors, the objective
 * as an ordered list of terms, and the optimizer, schedule and precision. This schema is the plan's one definition
 * and holds its defaults; the worker reads the parsed plan and restates none of them.
 *
 * The objective is the sum of its terms' weighted values, added in list order. Built-in kinds have their own
 * schema here; any other kind the worker has registered (a Term subclass decorated with `@term(name)`) is
 * `{ kind: "registered", name, python?, weight, options }`, its options checked by the worker's class.
 */
import { z } from "zod";
import { adaptorSpecSchema, PYTHON_REF } from "../adaptor/spec.js";
import { FEATURES, kdLossNames, matchLossNames, PROJECTION_KINDS, projectionGroupOptions } from "../config/distillation-config.js";
import { ConfigError, suggestName } from "../config/errors.js";
import { WEIGHT_SCHEDULERS, type WeightSchedulerName } from "../schedules/weight.js";
import { OptimizerSpec } from "./optimizer-spec.js";

const weight = z.number().min(0);

/** Top-k KD targets: how the teacher's missing mass is completed, and the support the token losses sum over. */
export const SparseTail = z.enum(["ignore", "uniform", "bucket"]);
export const SparseSupport = z.enum(["teacher", "both"]);
const weightScheduler = z.enum(WEIGHT_SCHEDULERS);

/** A loss name the worker knows (built in, or added with registerLoss), checked when the plan is parsed. */
function lossName(kind: "kd" | "match", known: () => string[]) {
  return z.string().superRefine((name, ctx) => {
    const names = known();
    if (names.includes(name)) return;
    const guess = suggestName(name, names);
    ctx.addIssue({
      code: "custom",
      input: name,
      message: `unknown ${kind} loss${guess ? ` (did you mean '${guess}'?)` : ""}; allowed: ${names.join(", ")}`,
    });
  });
}

export const TemperatureSchedulerSpec = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("none") }),
  z.strictObject({ type: z.literal("constant") }),
  z.strictObject({ type: z.literal("flsw"), beta: z.number(), gamma: z.number(), eps: z.number().positive() }),
  z.strictObject({ type: z.literal("cwsm"), beta: z.number() }),
]);

export const ProjectionSpec = z.strictObject({
  kind: z.enum(PROJECTION_KINDS),
  dimS: z.int().min(1),
  dimT: z.int().min(1),
  groupOptions: projectionGroupOptions.default({}),
});

const layer = z.union([z.int(), z.tuple([z.int(), z.int()])], {
  error: "expected a layer index (an integer, negative counts from the end) or a pair of indices [a, b]",
});

/** KD on logits at a (scheduled) temperature; its weight follows `weightScheduler` over the run. */
export const KdTermSpec = z.strictObject({
  kind: z.literal("kd"),
  lossType: lossName("kd", kdLossNames).default("ce"),
  temperature: z.number().positive().default(4),
  temperatureScheduler: TemperatureSchedulerSpec.default({ type: "none" }),
  probabilityShift: z.boolean().default(false),
  /** An adaptor without logits is an error (true) or leaves KD out of that batch (false). */
  required: z.boolean().default(false),
  weight: weight.default(1),
  weightScheduler: weightScheduler.default("none"),
  /** Worker tokenizer ids of each model: the vocabulary preflight compares their tokens (absent: sizes alone). */
  tokenizers: z.strictObject({ teacher: z.string().min(1), student: z.string().min(1) }).optional(),
});

export const TOKEN_LOSS_KINDS = ["kl", "reverse_kl", "jsd", "skew_kl", "skew_reverse_kl", "tvd"] as const;

/**
 * Token-level KD of a causal LM: position i counts when token i + 1 is a target (the adaptors' `labels` ≠ -100 and
 * `inputs_mask` ≠ 0), and the loss is averaged over the valid tokens of the whole optimizer step (`stepTokens`).
 */
export const CausalLmKdTermSpec = z.strictObject({
  kind: z.literal("causal_lm_kd"),
  loss: z.enum(TOKEN_LOSS_KINDS).default("kl"),
  temperature: z.number().positive().default(1),
  /** jsd's β (0: forward KL, 1: reverse KL, as TRL's GKD). */
  beta: z.number().min(0).max(1).default(0.5),
  /** The skew losses' α (DistiLLM). */
  alpha: z.number().min(0).max(1).default(0.1),
  /** Positions per chunk of the loss (null: about 2^20 logits per chunk). */
  chunkSize: z.int().min(1).nullable().default(null),
  weight: weight.default(1),
});

/** The sum of the means of the student adaptor's `losses`, weighted; left out of a batch without them. */
export const HardLabelTermSpec = z.strictObject({
  kind: z.literal("hard_label"),
  weight: weight.default(1),
  weightScheduler: weightScheduler.default("none"),
});

/** BasicTrainer's objective: the sum of the means of `losses`, unweighted and not reported as a term. */
export const SupervisedTermSpec = z.strictObject({ kind: z.literal("supervised") });

/** One intermediate match, with its own projection (trained, checkpointed) when `proj` is set. */
export const MatchTermSpec = z.strictObject({
  kind: z.literal("match"),
  feature: z.enum(FEATURES),
  loss: lossName("match", matchLossNames),
  layerS: layer,
  layerT: layer,
  weight: weight.default(1),
  proj: ProjectionSpec.nullable().default(null),
  /** Divisor of the masked mmd/nst Gram matrices: "hidden" (TextBrewer HEAD) or "length" (PyPI 0.2.1). */
  mmdMaskedDivisor: z.enum(["hidden", "length"]).default("hidden"),
});

/** BERT-EMD over every student and teacher layer (counts include the embeddings), one projection per student entry. */
export const EmdTermSpec = z.strictObject({
  kind: z.literal("emd"),
  layerNumS: z.int().min(2),
  layerNumT: z.int().min(2),
  weight: weight.default(1),
  feature: z.literal("hidden").default("hidden"),
  loss: z.literal("hidden_mse").default("hidden_mse"),
  proj: ProjectionSpec.nullable().default(null),
});

/** A term kind the worker has registered; `python` ("file.py:Class") is imported first when given. */
export const RegisteredTermSpec = z.strictObject({
  kind: z.literal("registered"),
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "expected an identifier (letters, digits, '_')" }),
  python: z.string().regex(PYTHON_REF, { error: 'expected "path/to/file.py:Class"' }).optional(),
  weight: weight.default(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

export const TermSpec = z.discriminatedUnion("kind", [
  KdTermSpec,
  HardLabelTermSpec,
  SupervisedTermSpec,
  MatchTermSpec,
  EmdTermSpec,
  RegisteredTermSpec,
  CausalLmKdTermSpec,
]);
export type TermSpec = z.output<typeof TermSpec>;
export type TermSpecInput = z.input<typeof TermSpec>;

const modelId = z.string().min(1);

/**
 * On-policy distillation: per batch, with probability `lmbda` (λ, TRL's GKD name; drawn from the run's RNG), the tokens after the first
 * `promptLength` are replaced by the student's own samples (as many as the batch has), and the terms see that batch.
 */
export const OnPolicySpec = z.strictObject({
  lmbda: z.number().min(0).max(1),
  promptLength: z.int().min(1),
  temperature: z.number().positive().default(1),
  topP: z.number().gt(0).max(1).default(1),
});

/** The scheduler as the loop resolves it (warmup in steps, the run's length). */
export const ResolvedScheduler = z.strictObject({
  type: z.enum(["constant", "linear", "cosine"]),
  warmupSteps: z.int().min(0),
  totalSteps: z.int().min(0),
  minLrRatio: z.number().min(0).max(1).default(0),
});

const curveKey = z.string().length(40, { error: "expected a z85 CURVE key (40 characters, from zmq.curveKeyPair())" });

/**
 * The link the student's worker opens to a teacher service (src/service/) when the teachers live there: the service
 * answers each step's teacher inputs with the adaptor outputs the terms read, worker to worker. `adaptorT` then
 * lists the service's adaptors (applied on the service side) and `teachers` stays empty.
 */
export const TeacherServiceLink = z.strictObject({
  endpoint: z.string().min(1),
  /** Sent with every request; the service refuses another. */
  token: z.string().min(16),
  /** CURVE: the service's public key, and this client's key pair (its public key on the service's allow-list). */
  serverKey: curveKey.nullable().default(null),
  publicKey: curveKey.nullable().default(null),
  secretKey: curveKey.nullable().default(null),
  /** How many teachers the service runs (one result each, averaged for KD as in-process). */
  teachers: z.int().min(1),
  /** The float dtype the outputs travel in (the student reads them as float32). */
  dtype: z.enum(["float32", "bfloat16", "float16"]).default("float32"),
  /** The longest wait for one reply (or for room to send) before the step fails with TeacherServiceError. */
  timeoutMs: z.int().min(1).default(60_000),
  /** Requests sent ahead and not yet answered, at most (steps in flight read ahead). */
  window: z.int().min(1).max(16).default(2),
  /**
   * KD targets as the teachers' top-k log-probabilities at the KD temperature (ids int32, values float32) instead of
   * dense logits: the same targets a teacher cache with `topK` stores, read by the same sparse losses.
   */
  topK: z.int().min(1).nullable().default(null),
  /** With topK: how the missing mass is completed, and the token losses' support (as the teacher cache's options). */
  tail: SparseTail.default("ignore"),
  support: SparseSupport.default("teacher"),
});
export type TeacherServiceLink = z.output<typeof TeacherServiceLink>;
export type TeacherServiceLinkInput = z.input<typeof TeacherServiceLink>;

export const TrainPlan = z.strictObject({
  student: modelId,
  /** One list of teachers, or one per task (with `tasks`). */
  teachers: z.union([z.array(modelId), z.record(z.string(), z.array(modelId))]).default([]),
  adaptorS: z.union([adaptorSpecSchema, z.record(z.string(), adaptorSpecSchema)]),
  adaptorT: z.union([z.array(adaptorSpecSchema), z.record(z.string(), z.array(adaptorSpecSchema))]).default([]),
  tasks: z.array(z.string()).optional(),
  terms: z.array(TermSpec).min(1),
  /** Python losses added with registerLoss, imported by the worker before the terms are built. */
  customLosses: z.array(z.strictObject({ kind: z.enum(["kd", "match"]), name: z.string(), python: z.string() })).default([]),
  optimizer: OptimizerSpec,
  scheduler: ResolvedScheduler.nullable().default(null),
  maxGradNorm: z.number().default(-1),
  gradientAccumulationSteps: z.int().positive().default(1),
  mixedPrecision: z.enum(["no", "fp16", "bf16"]).default("no"),
  seed: z.int().nullable().default(null),
  forwardArgs: z.record(z.string(), z.unknown()).default({}),
  compile: z.boolean().default(false),
  logDir: z.string().nullable().default(null),
  onNonFinite: z.enum(["raise", "skip"]).default("raise"),
  teacherService: TeacherServiceLink.nullable().default(null),
  /** On-policy distillation (GKD): with probability lmbda per batch, the student's samples replace the continuations. */
  onPolicy: OnPolicySpec.optional(),
});
export type TrainPlan = z.output<typeof TrainPlan>;
export type TrainPlanInput = z.input<typeof TrainPlan>;

/** What a distiller contributes to the plan: models, adaptors and terms (the loop adds the rest). */
export type ObjectivePlan = Pick<
  TrainPlanInput,
  "student" | "teachers" | "adaptorS" | "adaptorT" | "tasks" | "terms" | "customLosses" | "teacherService" | "onPolicy"
>;

/** Parses a plan; a mistake is a ConfigError naming the path, the value and what is allowed. */
export function parsePlan(input: TrainPlanInput): TrainPlan {
  const r = TrainPlan.safeParse(input, { reportInput: true });
  if (!r.success) throw ConfigError.fromZod("train plan", r.error, { schema: TrainPlan, input });
  return r.data;
}

/** The name a match is logged under (TextBrewer's), also the key of its term in metrics. */
export function matchTermName(m: {
  feature: string;
  loss: string;
  layerS: number | readonly number[];
  layerT: number | readonly number[];
}): string {
  const layer = (x: number | readonly number[]): string => (typeof x === "number" ? String(x) : x.join("-"));
  return `unweighted_${m.feature}_${m.loss}_${layer(m.layerS)}_${layer(m.layerT)}`;
}

export const CAUSAL_LM_KD_TERM_NAME = "unweighted_causal_lm_kd_loss";

export const EMD_TERM_NAMES = ["unweighted_hidden_hidden_mse_emd", "unweighted_embedding_hidden_mse"] as const;

/** The weights of the reported terms whose weight is fixed (kd and hard_label follow their schedules). */
export function fixedTermWeights(terms: readonly TermSpec[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of terms) {
    if (t.kind === "match") out[matchTermName(t)] = t.weight;
    else if (t.kind === "emd") for (const name of EMD_TERM_NAMES) out[name] = t.weight;
    else if (t.kind === "registered") out[`unweighted_${t.name}`] = t.weight;
    else if (t.kind === "causal_lm_kd") out[CAUSAL_LM_KD_TERM_NAME] = t.weight;
  }
  return out;
}

export interface WeightSchedules {
  kdLossWeight: number;
  hardLabelWeight: number;
  kdLossWeightScheduler: WeightSchedulerName;
  hardLabelWeightScheduler: WeightSchedulerName;
}

/** The scheduled weights (kd, hard_label) the loop sends with each step; null for a plan with neither. */
export function weightSchedules(terms: readonly TermSpec[]): WeightSchedules | null {
  const kd = terms.find((t) => t.kind === "kd");
  const hard = terms.find((t) => t.kind === "hard_label");
  if (!kd && !hard) return null;
  return {
    kdLossWeight: kd?.weight ?? 1,
    hardLabelWeight: hard?.weight ?? 0,
    kdLossWeightScheduler: kd?.weightScheduler ?? "none",
    hardLabelWeightScheduler: hard?.weightScheduler ?? "none",
  };
}
