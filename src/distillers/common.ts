/** What every distiller shares: config parsing, model checks, the plan's common part, the call into the loop. */

import { type Adaptor, type AdaptorSpec, toAdaptorSpec } from "../adaptor/index.js";
import { DistillationConfig, type DistillationConfigInput } from "../config/distillation-config.js";
import { ConfigError } from "../config/errors.js";
import { TrainingConfig, type TrainingConfigInput } from "../config/training-config.js";
import type { TermSpecInput } from "../train/plan.js";
import { WorkerGroup } from "../worker/group/worker-group.js";
import type { ModelHandle } from "../worker/model-handle.js";
import type { WorkerLink } from "../worker/worker-link.js";

export type TrainingConfigLike = TrainingConfig | TrainingConfigInput;
export type DistillationConfigLike = DistillationConfig | DistillationConfigInput;

export function parseTrainingConfig(input: TrainingConfigLike | undefined): TrainingConfig {
  return TrainingConfig.parse(input ?? {});
}

export function parseDistillationConfig(input: DistillationConfigLike | undefined): DistillationConfig {
  return DistillationConfig.parse(input ?? {});
}

/** Every model of a run must live in the same worker, on the device the config asks for. */
export function sameWorker(models: Record<string, ModelHandle>, config: TrainingConfig): WorkerLink {
  const entries = Object.entries(models);
  const worker = entries[0]![1].worker;
  for (const [name, m] of entries) {
    if (m.worker !== worker) throw new Error(`${name}: every model of a run must be loaded in the same Worker`);
  }
  checkDataParallel(config, worker);
  const want = config.device;
  const have = worker.info.device;
  if (want !== "auto" && !(have === want || have.startsWith(`${want}:`) || (want.startsWith("cuda") && have === `${want}:0`))) {
    throw new ConfigError("TrainingConfig", [
      {
        path: "device",
        kind: "invalid_value",
        message: `'${want}' but the worker runs on '${have}': start it with Worker.start({ device: "${want}" }) or set device "auto"`,
      },
    ]);
  }
  return worker;
}

/**
 * TextBrewer's multi-GPU switches: data parallelism comes from the worker group the models live in (torchrun +
 * DDP); `dataParallel: true` says so and is accepted there, `localRank` is torchrun's to set.
 */
function checkDataParallel(config: TrainingConfig, worker: WorkerLink): void {
  const start = "WorkerGroup.start({ device, distributed: { nprocPerNode: N } }) and load the models through the group";
  if (config.localRank >= 0) {
    throw new ConfigError("TrainingConfig", [
      {
        path: "localRank",
        kind: "invalid_value",
        message: `${config.localRank}: each rank of a worker group gets its LOCAL_RANK and device from torchrun; leave localRank -1 and start the ranks with ${start}`,
      },
    ]);
  }
  if (config.dataParallel && !(worker instanceof WorkerGroup)) {
    throw new ConfigError("TrainingConfig", [
      {
        path: "dataParallel",
        kind: "invalid_value",
        message: `true but the models live in a single Worker; for data-parallel training start ${start} (dataParallel may stay true), or leave dataParallel false`,
      },
    ]);
  }
}

export function adaptorSpec(adaptor: Adaptor, name: string): AdaptorSpec {
  try {
    return toAdaptorSpec(adaptor);
  } catch (e) {
    (e as Error).message = `${name}: ${(e as Error).message}`;
    throw e;
  }
}

/** KD as the config asks for it; `required`: adaptors without logits are an error (else KD skips the batch). */
export function kdTerm(d: DistillationConfig, options: { required: boolean }): TermSpecInput {
  return {
    kind: "kd",
    lossType: d.kdLossType,
    temperature: d.temperature,
    temperatureScheduler: d.temperatureScheduler,
    probabilityShift: d.probabilityShift,
    required: options.required,
    weight: d.kdLossWeight,
    weightScheduler: d.kdLossWeightScheduler,
  };
}

/** One term per intermediate match of the config, in its order. */
export function matchTerms(d: DistillationConfig): TermSpecInput[] {
  return d.intermediateMatches.map((m) => ({ kind: "match", ...m, mmdMaskedDivisor: d.mmdMaskedDivisor }));
}

export function hardLabelTerm(d: DistillationConfig): TermSpecInput {
  return { kind: "hard_label", weight: d.hardLabelWeight, weightScheduler: d.hardLabelWeightScheduler };
}
