/**
 * The fidelity report of sparse teacher targets: on a sample of the data, how far top-k and sampled targets are
 * from the teacher's full distribution (KL, nats per token) and what each costs (bytes per token), so `topK` can be
 * chosen with numbers before a full fill. The worker computes it (`teacher_sparse_fidelity`).
 */
import type { z } from "zod";
import type { AdaptorSpec } from "../adaptor/index.js";
import { DataFeed, iterate } from "../train/data.js";
import type { DataSource } from "../train/options.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import type { fidelityReport } from "../worker/ops/cache.js";

export type FidelityReport = z.infer<typeof fidelityReport>;

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
