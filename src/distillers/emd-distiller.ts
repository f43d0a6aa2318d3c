import { ConfigError } from "../config/errors.js";
import { addExtras } from "../env/python-env.js";
import type { TrainResult } from "../train/loop.js";
import type { TermSpecInput } from "../train/plan.js";
import { hardLabelTerm, kdTerm } from "./common.js";
import { type DistillerOptions, SingleTeacherDistiller } from "./single-teacher.js";
import type { TrainOptions } from "./train-options.js";

export interface EmdOptions {
  /** Student hidden-state entries including the embeddings (layers + 1). */
  layerNumS: number;
  /** Teacher hidden-state entries including the embeddings. */
  layerNumT: number;
  weight?: number;
  /** [kind, dimS, dimT]: one projection per student entry. */
  proj?: ["linear" | "relu" | "tanh", number, number];
  feature?: "hidden";
  loss?: "hidden_mse";
}

export interface EmdDistillerOptions extends DistillerOptions {
  emd: EmdOptions;
}

/**
 * BERT-EMD: every student layer learns from every teacher layer, weighted by the optimal-transport flow between
 * them (an exact solver, POT), plus the embedding term; on top of KD and hard labels as BasicDistiller.
 */
export class EMDDistiller extends SingleTeacherDistiller {
  readonly emd: Required<Omit<EmdOptions, "proj">> & { proj: EmdOptions["proj"] | null };

  constructor(options: EmdDistillerOptions) {
    super(options);
    const matches = this.distillConfig.intermediateMatches.length;
    if (matches > 0) {
      throw new ConfigError("DistillationConfig", [
        {
          path: "intermediateMatches",
          kind: "invalid_value",
          message: `${matches} match(es) given, but EMDDistiller pairs the layers itself through \`emd\` and would not run them; drop intermediateMatches, or use GeneralDistiller for fixed matches`,
        },
      ]);
    }
    const e = options.emd;
    if ((e.feature ?? "hidden") !== "hidden" || (e.loss ?? "hidden_mse") !== "hidden_mse") {
      throw new Error("emd: only feature 'hidden' with loss 'hidden_mse' is defined (as in BERT-EMD)");
    }
    for (const key of ["layerNumS", "layerNumT"] as const) {
      if (!Number.isInteger(e[key]) || e[key] < 2)
        throw new Error(`emd.${key}: expected an integer ≥ 2 (layers + embeddings), got ${e[key]}`);
    }
    this.emd = {
      layerNumS: e.layerNumS,
      layerNumT: e.layerNumT,
      weight: e.weight ?? 1,
      feature: "hidden",
      loss: "hidden_mse",
      proj: e.proj ?? null,
    };
  }

  /** POT is an extra of the managed environment: added here when EMD first runs (a no-op once it is there). */
  override async train(options: TrainOptions): Promise<TrainResult> {
    await addExtras(["emd"]);
    return super.train(options);
  }

  protected terms(): TermSpecInput[] {
    const d = this.distillConfig;
    const p = this.emd.proj;
    const emd: TermSpecInput = { kind: "emd", ...this.emd, proj: p ? { kind: p[0], dimS: p[1], dimT: p[2] } : null };
    return [kdTerm(d, { required: true }), emd, hardLabelTerm(d)];
  }

  protected override cacheable(): string {
    return "EMD matches the teacher's hidden states every step, and only logits are cached";
  }
}
