/**
 * Complete exports: the options of `model.save(dir, { tokenizer, card, labels })` and the model card (README.md) they
 * write, in the form the Hugging Face Hub reads (YAML front matter, then Markdown).
 */
import { z } from "zod";
import { parseConfig } from "../config/errors.js";

/** What a model card says about a distilled model; every section is optional. */
export const ModelCard = z.strictObject({
  /** The card's heading (default: the model's class name). */
  title: z.string().min(1).optional(),
  description: z.string().optional(),
  /** The teacher the student learned from (a name, a path or a Hub id). */
  teacher: z.string().optional(),
  /** How it was trained: a sentence, or the configs (written as JSON), e.g. a checkpoint's trainer_state configs. */
  recipe: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  /** Evaluation results by name, e.g. `{ "accuracy (test)": 0.92 }`. */
  metrics: z.record(z.string(), z.union([z.number(), z.string()])).optional(),
  /** The data it was trained and evaluated on. */
  data: z.string().optional(),
  /** An SPDX license id for the front matter, e.g. "apache-2.0". */
  license: z.string().optional(),
});
export type ModelCard = z.output<typeof ModelCard>;

/** Checked form of SaveOptions: the tokenizer is a handle, checked by the worker that holds it. */
const SaveOptionsSchema = z.strictObject({
  tokenizer: z
    .custom<{ id: string }>((v) => typeof v === "object" && v !== null && typeof (v as { id?: unknown }).id === "string", {
      message: "expected a tokenizer handle (from worker.loadTokenizer)",
    })
    .optional(),
  card: z.union([ModelCard, z.string()]).optional(),
  labels: z.array(z.string().min(1)).min(1).optional(),
});

/** The worker op that writes a complete export (`export_model`): its arguments and result. */
export const exportModelArgs = z.strictObject({
  model: z.string(),
  dir: z.string(),
  tokenizer: z.string().nullable(),
  readme: z.string().nullable(),
  labels: z.array(z.string()).nullable(),
});
export const exportModelResult = z.object({ files: z.array(z.string()) });

export interface SaveOptionsChecked {
  tokenizer?: { id: string };
  card?: ModelCard | string;
  labels?: string[];
}

/** Throws ConfigError (field, value, allowed keys, "did you mean") for options that do not fit. */
export function checkSaveOptions(options: unknown): SaveOptionsChecked {
  const result = parseConfig("save options", SaveOptionsSchema, SaveOptionsSchema, options);
  if (!result.success) throw result.error;
  return result.data as SaveOptionsChecked;
}

/** What the model itself tells the card. */
export interface ModelFacts {
  className: string;
  config: Record<string, unknown> | null;
  numParameters: number;
  /** Label names in logit order (from `labels`, else the config's id2label). */
  labels: string[] | null;
}

const PIPELINE_TAGS: ReadonlyArray<readonly [string, string]> = [
  ["ForSequenceClassification", "text-classification"],
  ["ForTokenClassification", "token-classification"],
  ["ForQuestionAnswering", "question-answering"],
  ["ForMaskedLM", "fill-mask"],
  ["ForCausalLM", "text-generation"],
  ["LMHeadModel", "text-generation"],
];

/** The pipeline() task a model class serves (null for a base model). */
export function pipelineTag(className: string): string | null {
  return PIPELINE_TAGS.find(([suffix]) => className.endsWith(suffix))?.[1] ?? null;
}

/** Label names of a config's id2label, in index order (null when it has none). */
export function configLabels(config: Record<string, unknown> | null): string[] | null {
  const map = config?.id2label;
  if (typeof map !== "object" || map === null) return null;
  const entries = Object.entries(map as Record<string, unknown>).sort(([a], [b]) => Number(a) - Number(b));
  return entries.map(([, name]) => String(name));
}

function formatMetric(value: number | string): string {
  return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(4) : String(value);
}

/** The README.md of an export: front matter for the Hub, then the model, teacher, recipe, metrics, data and usage. */
export function renderModelCard(card: ModelCard, facts: ModelFacts): string {
  const tag = pipelineTag(facts.className);
  const front = ["---", "library_name: transformers", ...(tag ? [`pipeline_tag: ${tag}`] : [])];
  if (card.license) front.push(`license: ${card.license}`);
  front.push("tags:", "- distillation", "- textbrewer-ts", "---", "");
  const lines = [...front, `# ${card.title ?? facts.className}`, ""];
  if (card.description) lines.push(card.description, "");
  const c = facts.config ?? {};
  const shape = ["num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size"]
    .filter((k) => typeof c[k] === "number")
    .map((k) => `${k} ${c[k]}`);
  lines.push("## Model", "", `- ${facts.className}${typeof c.model_type === "string" ? ` (model_type ${c.model_type})` : ""}`);
  if (shape.length > 0) lines.push(`- ${shape.join(", ")}`);
  lines.push(`- ${facts.numParameters.toLocaleString("en-US")} parameters`);
  if (facts.labels) lines.push(`- labels: ${facts.labels.map((l, i) => `${i} ${l}`).join(", ")}`);
  lines.push("");
  if (card.teacher) lines.push("## Teacher", "", card.teacher, "");
  if (card.recipe !== undefined) {
    lines.push("## Recipe", "");
    if (typeof card.recipe === "string") lines.push(card.recipe, "");
    else lines.push("```json", JSON.stringify(card.recipe, null, 2), "```", "");
  }
  if (card.metrics && Object.keys(card.metrics).length > 0) {
    lines.push("## Metrics", "", "| metric | value |", "| --- | --- |");
    for (const [name, value] of Object.entries(card.metrics)) lines.push(`| ${name} | ${formatMetric(value)} |`);
    lines.push("");
  }
  if (card.data) lines.push("## Data", "", card.data, "");
  if (tag) {
    lines.push(
      "## Usage",
      "",
      "```python",
      "from transformers import pipeline",
      "",
      `pipe = pipeline("${tag}", model="path/to/this/folder")`,
      "```",
      "",
    );
  }
  lines.push("Distilled with textbrewer-ts.", "");
  return lines.join("\n");
}
