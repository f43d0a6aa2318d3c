import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export interface StepMetrics {
  step: number;
  epoch: number;
  time: number;
  /** Mean total loss of the step's micro-batches; NaN (null in the file) when none was finite. */
  total: number;
  /** Unweighted loss terms, averaged over the step's micro-batches. */
  terms: Record<string, number>;
  /** The same terms times their weights. */
  weighted: Record<string, number>;
  lr: number[];
  gradNorm: number | null;
  samplesPerSecond: number;
  /**
   * Milliseconds the worker waited for the next request since the previous optimizer step. Near 0 when the script
   * keeps the worker busy; large when data preparation, callbacks or anything else in TypeScript holds it up.
   */
  workerIdleMs?: number;
  kdWeight?: number;
  hardWeight?: number;
  /** Run counters, e.g. teacher forwards run and skipped, cache hits and misses. */
  counters?: Record<string, number>;
  /**
   * This step did not update the weights: "non-finite" (a NaN/Inf loss with onNonFinite "skip") or "overflow"
   * (fp16: GradScaler found inf/NaN gradients and lowered the scale).
   */
  skipped?: "non-finite" | "overflow";
  /** The loss terms that were NaN/Inf (left out of total and terms). */
  nonFinite?: string[];
  /** fp16: GradScaler's loss scale after this step. */
  lossScale?: number;
  /** Steps skipped so far in this run (since it started or resumed); absent while none was. */
  skippedSteps?: number;
}

/** outputDir/metrics.jsonl: one line per optimizer step. */
export class MetricsLog {
  readonly path: string;

  constructor(outputDir: string) {
    mkdirSync(outputDir, { recursive: true });
    this.path = join(outputDir, "metrics.jsonl");
  }

  write(m: StepMetrics): void {
    appendFileSync(this.path, `${JSON.stringify(m)}\n`);
  }
}
