import type { Adaptor, AdaptorFn, AdaptorSpec } from "../adaptor/index.js";
import { ConfigError } from "../config/errors.js";
import { countTargetTokens } from "../llm/tokens.js";
import { isServedTeachers, type ServedTeachers } from "../service/served-teachers.js";
import { type ObjectivePlan, OnPolicySpec, type TermSpecInput, TOKEN_LOSS_KINDS } from "../train/plan.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import { hardLabelTerm, parseDistillationConfig } from "./common.js";
import type { DistillerBaseOptions } from "./distiller-base.js";
import { SingleTeacherDistiller } from "./single-teacher.js";

export type OnPolicyOptions = NonNullable<ObjectivePlan["onPolicy"]>;

export interface CausalLMDistillerOptions extends DistillerBaseOptions {
  /**
   * A model in the student's worker, or a teacher service (`textbrewer-ts/service`, started with CAUSAL_LM_ADAPTOR or
   * an adaptor of its own); `service.client({ topK })` sends top-k targets instead of the (batch, length, vocabulary)
   * logits.
   */
  teacher: ModelHandle | ServedTeachers;
  /** Default `(b, o) => ({ logits: o.logits, labels: b.labels, inputs_mask: b.attention_mask })`; left out with a service. */
  adaptorT?: Adaptor;
  /** Default as adaptorT, plus `losses: o.loss` when hardLabelWeight > 0. */
  adaptorS?: Adaptor;
  /** jsd's β (0: forward KL, 1: reverse KL), the skew losses' α, positions per loss chunk. */
  loss?: { beta?: number; alpha?: number; chunkSize?: number | null };
  /** On-policy distillation (GKD): with probability lmbda (λ) per batch the student's samples replace the continuations. */
  onPolicy?: OnPolicyOptions;
}

const TOKEN_LOSSES = TOKEN_LOSS_KINDS.map((k) => `token_${k}`);

/** The default adaptor of both models: logits, and the batch's labels and attention mask marking the targets. */
export const CAUSAL_LM_ADAPTOR: AdaptorFn = (b, o) => ({ logits: o.logits, labels: b.labels, inputs_mask: b.attention_mask });
const LM_ADAPTOR_WITH_LOSS: AdaptorFn = (b, o) => ({ logits: o.logits, labels: b.labels, inputs_mask: b.attention_mask, losses: o.loss });

/**
 * Token-level KD of a causal LM (`kdLossType` token_kl, token_reverse_kl, token_jsd, token_skew_kl,
 * token_skew_reverse_kl or token_tvd at `temperature`): the next-token shift in the worker, and the loss averaged over
 * the valid target tokens of each optimizer step (summed over its micro-batches and ranks). Batches are records of
 * (batch, length) `input_ids`, `attention_mask` and `labels` (-100: no target). Offline KD from a top-k teacher cache
 * works as in the other distillers; `onPolicy` trains on the student's own samples scored by the teacher.
 */
export class CausalLMDistiller extends SingleTeacherDistiller {
  readonly onPolicy: OnPolicyOptions | undefined;
  private readonly loss: { beta?: number; alpha?: number; chunkSize?: number | null };

  constructor(options: CausalLMDistillerOptions) {
    const hardLabel = parseDistillationConfig(options.distillConfig).hardLabelWeight > 0;
    super({
      ...options,
      // a teacher service applies the adaptor it was started with
      ...(isServedTeachers(options.teacher) ? {} : { adaptorT: options.adaptorT ?? CAUSAL_LM_ADAPTOR }),
      adaptorS: options.adaptorS ?? (hardLabel ? LM_ADAPTOR_WITH_LOSS : CAUSAL_LM_ADAPTOR),
    });
    const d = this.distillConfig;
    if (!TOKEN_LOSSES.includes(d.kdLossType)) {
      throw new ConfigError("DistillationConfig", [
        {
          path: "kdLossType",
          kind: "invalid_value",
          message: `'${d.kdLossType}' is not a token-level loss; CausalLMDistiller uses one of ${TOKEN_LOSSES.map((n) => `'${n}'`).join(", ")}`,
        },
      ]);
    }
    if (d.intermediateMatches.length) {
      throw new ConfigError("DistillationConfig", [
        {
          path: "intermediateMatches",
          kind: "invalid_value",
          message: "CausalLMDistiller distils logits only; use GeneralDistiller for matches",
        },
      ]);
    }
    if (options.onPolicy !== undefined) {
      const r = OnPolicySpec.safeParse(options.onPolicy, { reportInput: true });
      if (!r.success) throw ConfigError.fromZod("CausalLMDistiller.onPolicy", r.error, { schema: OnPolicySpec, input: options.onPolicy });
      this.onPolicy = r.data;
    }
    this.loss = options.loss ?? {};
  }

  protected terms(): TermSpecInput[] {
    const d = this.distillConfig;
    const kd: TermSpecInput = {
      kind: "causal_lm_kd",
      loss: d.kdLossType.slice("token_".length) as (typeof TOKEN_LOSS_KINDS)[number],
      temperature: d.temperature,
      weight: d.kdLossWeight,
      ...this.loss,
    };
    return d.hardLabelWeight > 0 ? [kd, hardLabelTerm(d)] : [kd];
  }

  protected override sequencePlan(): { onPolicy?: OnPolicyOptions; countTokens: (batch: Batch) => number } {
    return { ...(this.onPolicy ? { onPolicy: this.onPolicy } : {}), countTokens: countTargetTokens };
  }

  protected override cacheable(): { teachers: ModelHandle[]; adaptorT: AdaptorSpec[] } | string {
    if (this.onPolicy && this.onPolicy.lmbda > 0) return "on-policy batches are sampled during the run, so the teacher scores them live";
    return super.cacheable();
  }
}
