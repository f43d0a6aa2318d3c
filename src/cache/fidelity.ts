/**
 * The fidelity reports of a cache, before a full fill. Sparse teacher targets: on a sample of the data, how far
 * top-k and sampled targets are from the teacher's full distribution (KL, nats per token) and what each costs (bytes
 * per token), so `topK` can be chosen with numbers (`teacher_sparse_fidelity`). Cached features: each match's loss
 * from live teacher features and from each storage form of them, and bytes per example (`teacher_feature_fidelity`).
 */
import type { z } from "zod";
import { type Adaptor, type AdaptorSpec, toAdaptorSpec } from "../adaptor/index.js";
import { DataFeed, iterate } from "../train/data.js";
import type { DataSource } from "../train/options.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import type { featureFidelityReport, fidelityReport } from "../worker/ops/cache.js";
import { FEATURE_DTYPES, type FeatureDType, type FeaturePlan } from "./features.js";

export type FidelityReport = z.infer<typeof fidelityReport>;
type WorkerFeatureReport = z.infer<typeof featureFidelityReport>;

/**
 * Per match: the loss from live teacher features (mean over the sampled examples) and from each storage form, with
 * the largest absolute and relative difference seen on a sampled batch; the bytes per example of each form; and
 * `table`, the report as text to print.
 */
export interface FeatureFidelityReport extends WorkerFeatureReport {
  batches: number;
  table: string;
}

export interface FidelityOptions {
  data: DataSource;
  /** Values of k to measure (default 8, 32, 128). */
  topK?: number[];
  /** Draws per token of sampled targets to measure (default 16, 64). */
  samples?: number[];
  /** Batches of the data to measure (default 2). */
  batches?: number;
  seed?: number;
  forwardArgs?: Record<string, unknown>;
}

export interface FeatureFidelityOptions {
  data: DataSource;
  /** The student whose features the matches compare (at its current weights, in eval mode). */
  student: ModelHandle;
  adaptorS: Adaptor;
  /** Storage forms to measure (default float32, float16, int8). */
  dtypes?: FeatureDType[];
  /** Batches of the data to measure (default 2). */
  batches?: number;
  /** Seed of the projections' initialisation (the report's projections are fresh ones). */
  seed?: number;
  forwardArgs?: Record<string, unknown>;
}

/** Position-weighted mean of per-batch reports (same k and sample counts in each). */
export function mergeReports(reports: FidelityReport[]): FidelityReport {
  const total = reports.reduce((n, r) => n + r.positions, 0);
  const mean = (pick: (r: FidelityReport) => number) => reports.reduce((s, r) => s + pick(r) * r.positions, 0) / total;
  const first = reports[0]!;
  return {
    ...first,
    positions: total,
    topK: first.topK.map((e, i) => ({
      ...e,
      keptMass: mean((r) => r.topK[i]!.keptMass),
      klRenormalizedToFull: mean((r) => r.topK[i]!.klRenormalizedToFull),
      klFullToUniformTail: mean((r) => r.topK[i]!.klFullToUniformTail),
    })),
    sampled: first.sampled.map((e, i) => ({
      ...e,
      klSampledToFull: mean((r) => r.sampled[i]!.klSampledToFull),
      distinctIds: mean((r) => r.sampled[i]!.distinctIds),
    })),
  };
}

/** Measures the first `batches` batches of epoch 0; one merged report per logits tensor of the teacher adaptor. */
export async function measureFidelity(
  teachers: ModelHandle[],
  adaptors: AdaptorSpec[],
  temperature: number,
  strip: (batch: Batch) => Batch,
  options: FidelityOptions,
): Promise<FidelityReport[]> {
  const worker = teachers[0]!.worker;
  const limit = options.batches ?? 2;
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`fidelity.batches: expected a positive integer, got ${limit}`);
  const perBatch: FidelityReport[][] = [];
  for await (const { batch } of iterate(new DataFeed(options.data).epoch(0).items)) {
    const args = {
      teachers: teachers.map((t) => t.id),
      adaptors,
      batch: strip(batch),
      forwardArgs: options.forwardArgs ?? {},
      temperature,
      ks: options.topK ?? [8, 32, 128],
      samples: options.samples ?? [16, 64],
      seed: options.seed ?? 0,
    };
    perBatch.push(await worker.call("teacher_sparse_fidelity", args));
    if (perBatch.length >= limit) break;
  }
  if (!perBatch.length) throw new Error("fidelity: the data gave no batch to measure");
  return perBatch[0]!.map((_, i) => mergeReports(perBatch.map((reports) => reports[i]!)));
}

/** Measures the first `batches` batches of epoch 0 with the live teacher and with each storage form of its features. */
export async function measureFeatureFidelity(
  teacher: ModelHandle,
  adaptorT: AdaptorSpec,
  plan: FeaturePlan,
  strip: (batch: Batch) => Batch,
  options: FeatureFidelityOptions,
): Promise<FeatureFidelityReport> {
  const limit = options.batches ?? 2;
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`fidelity.batches: expected a positive integer, got ${limit}`);
  const adaptorS = toAdaptorSpec(options.adaptorS);
  const perBatch: WorkerFeatureReport[] = [];
  for await (const { batch } of iterate(new DataFeed(options.data).epoch(0).items)) {
    perBatch.push(
      await teacher.worker.call("teacher_feature_fidelity", {
        student: options.student.id,
        teacher: teacher.id,
        adaptorS,
        adaptorT,
        matches: plan.matches,
        batch: strip(batch),
        forwardArgs: options.forwardArgs ?? {},
        dtypes: options.dtypes ?? [...FEATURE_DTYPES],
        seed: options.seed ?? 0,
      }),
    );
    if (perBatch.length >= limit) break;
  }
  if (!perBatch.length) throw new Error("fidelity: the data gave no batch to measure");
  const merged = mergeFeatureReports(perBatch);
  return { ...merged, batches: perBatch.length, table: featureFidelityTable(merged) };
}

/** Example-weighted means of the losses and bytes; the largest difference of any batch. */
export function mergeFeatureReports(reports: WorkerFeatureReport[]): WorkerFeatureReport {
  const total = reports.reduce((n, r) => n + r.examples, 0);
  const mean = (pick: (r: WorkerFeatureReport) => number) => reports.reduce((s, r) => s + pick(r) * r.examples, 0) / total;
  const max = (pick: (r: WorkerFeatureReport) => number) => Math.max(...reports.map(pick));
  const first = reports[0]!;
  return {
    examples: total,
    bytesPerExample: first.bytesPerExample.map((e, i) => ({ ...e, bytes: mean((r) => r.bytesPerExample[i]!.bytes) })),
    matches: first.matches.map((m, i) => ({
      name: m.name,
      live: mean((r) => r.matches[i]!.live),
      stored: m.stored.map((e, j) => ({
        dtype: e.dtype,
        loss: mean((r) => r.matches[i]!.stored[j]!.loss),
        absDiff: max((r) => r.matches[i]!.stored[j]!.absDiff),
        relDiff: max((r) => r.matches[i]!.stored[j]!.relDiff),
      })),
    })),
  };
}

function featureFidelityTable(report: WorkerFeatureReport): string {
  const g = (x: number) => x.toPrecision(3);
  const lines = [`teacher features, ${report.examples} examples: match loss live vs cached (|Δ| / relative, largest of a batch)`];
  for (const m of report.matches) {
    const forms = m.stored.map((e) => `${e.dtype} ${g(e.loss)} (${g(e.absDiff)} / ${g(e.relDiff)})`);
    lines.push(`  ${m.name}: live ${g(m.live)}; ${forms.join("; ")}`);
  }
  lines.push(`  bytes per example: ${report.bytesPerExample.map((e) => `${e.dtype} ${Math.round(e.bytes)}`).join(", ")}`);
  return lines.join("\n");
}
