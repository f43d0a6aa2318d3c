/**
 * The run file of `textbrewer distill <file>`: what a distillation script sets up, as data. The nested configs
 * (trainConfig, distillConfig, optimizer, scheduler, the loop's options) are checked by the schemas `train()` and the
 * distillers use, so a run file and a script accept the same values.
 */
import { z } from "zod";
import { loopOptionsShape, OptimizerSpec, SchedulerSpec } from "../train/options.js";

const TASKS = ["sequence-classification", "token-classification", "question-answering", "masked-lm", "causal-lm", "base"] as const;

const loadedModel = z.strictObject({
  /** A Hugging Face folder, a state dict with `config`, or a Hub id in the local cache (as `worker.loadModel`). */
  path: z.string().min(1),
  task: z.enum(TASKS).default("sequence-classification"),
});

const student = z
  .strictObject({
    /** Load the student (as the teacher) ... */
    path: z.string().min(1).optional(),
    /** ... or build it from the teacher's config with these keys overridden (`worker.createModel`). */
    create: z
      .strictObject({
        config: z.record(z.string(), z.unknown()).default({}),
        /** "teacher": start from the teacher's config and copy its embeddings, head and the `layerMap` layers. */
        initFrom: z.enum(["teacher", "none"]).default("teacher"),
        layerMap: z.array(z.int().min(0)).optional(),
      })
      .optional(),
    task: z.enum(TASKS).default("sequence-classification"),
    /** Parameters whose name matches this regex are frozen (`model.setTrainable(regex, false)`). */
    frozen: z.string().min(1).optional(),
  })
  .refine((s) => (s.path === undefined) !== (s.create === undefined), { error: "give the student's path or create (one of them)" });

export const DISTILLERS = ["GeneralDistiller", "BasicDistiller"] as const;

const distiller = z.strictObject({
  type: z.enum(DISTILLERS).default("GeneralDistiller"),
  /** camelCase (as `TrainingConfig.parse`) or TextBrewer's snake_case (as `TrainingConfig.fromTextBrewer`). */
  trainConfig: z.record(z.string(), z.unknown()).default({}),
  distillConfig: z.record(z.string(), z.unknown()).default({}),
  /** A Python adaptor for both models (`file.py:function`, relative to the run file); default: the built-in one. */
  adaptor: z
    .string()
    .regex(/^.+\.py:[A-Za-z_]\w*$/, { error: 'expected "file.py:function"' })
    .optional(),
});

const fileList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

const data = z.strictObject({
  /** Training file, or one file per epoch (cycled), e.g. the training set with new augmented copies each epoch. */
  train: fileList,
  dev: z.string().min(1).optional(),
  test: z.string().min(1).optional(),
  /** By the extension: .jsonl/.ndjson, .csv, .tsv. */
  format: z.enum(["jsonl", "csv", "tsv"]).optional(),
  /** The text column (CSV/TSV header name) or field (JSONL). */
  text: z.string().min(1).default("text"),
  label: z.string().min(1).default("label"),
  /** Class names, index = class id; default: the labels found in the training data, sorted. */
  labels: z.array(z.string()).min(1).optional(),
  /** Rows already hold input_ids (and attention_mask, token_type_ids); no tokenizer runs. */
  pretokenized: z.boolean().default(false),
  /** The tokenizer's folder (default: the teacher's path). */
  tokenizer: z.string().min(1).optional(),
  maxLength: z.int().positive().default(128),
  batchSize: z.int().positive().default(32),
  /** Batches of similar lengths, so they carry little padding (shuffled all the same). */
  bucketByLength: z.boolean().default(true),
  /** Keep token_type_ids from the tokenizer (default: dropped, as one-segment inputs do not need them). */
  tokenTypeIds: z.boolean().default(false),
});

const training = z
  .strictObject({
    numEpochs: loopOptionsShape.numEpochs,
    numSteps: loopOptionsShape.numSteps,
    maxGradNorm: loopOptionsShape.maxGradNorm,
    inFlight: loopOptionsShape.inFlight,
    logEvery: loopOptionsShape.logEvery,
    logLineEvery: loopOptionsShape.logLineEvery,
    onNonFinite: loopOptionsShape.onNonFinite,
    compile: loopOptionsShape.compile,
    resumeFrom: loopOptionsShape.resumeFrom,
    forwardArgs: loopOptionsShape.forwardArgs,
  })
  .refine((t) => (t.numEpochs === undefined) !== (t.numSteps === undefined), { error: "give numEpochs or numSteps (one of them)" });

const evaluation = z.strictObject({
  metric: z.enum(["accuracy"]).default("accuracy"),
  /** The split scored at each checkpoint; the best checkpoint on it is reported (and, given `test`, scored there). */
  split: z.enum(["dev", "test"]).default("dev"),
  batchSize: z.int().positive().default(64),
});

/** The teacher-output cache (`teacherCache` of train()); absent: none. */
const cache = z.strictObject({
  dir: z.string().min(1).optional(),
  dtype: z.enum(["float32", "float16", "bfloat16"]).optional(),
  topK: z.int().positive().nullable().optional(),
});

export const RunFile = z.strictObject({
  teacher: loadedModel,
  student,
  distiller: distiller.default({ type: "GeneralDistiller", trainConfig: {}, distillConfig: {} }),
  data,
  optimizer: OptimizerSpec,
  scheduler: SchedulerSpec.optional(),
  training,
  evaluation: evaluation.optional(),
  cache: cache.optional(),
  /** The run folder: checkpoints, metrics.jsonl, the resolved config (default: trainConfig's outputDir). */
  output: z.strictObject({ dir: z.string().min(1) }).optional(),
});
export type RunFile = z.output<typeof RunFile>;
export type RunFileInput = z.input<typeof RunFile>;
