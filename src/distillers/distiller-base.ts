import type { z } from "zod";
import type { AdaptorSpec } from "../adaptor/index.js";
import { DistillCache } from "../cache/distill-cache.js";
import { featureDifference, featureRefs } from "../cache/features.js";
import type { DistillationConfig, IntermediateMatch } from "../config/distillation-config.js";
import { ConfigError } from "../config/errors.js";
import type { TrainingConfig } from "../config/training-config.js";
import { customLossPlan } from "../losses/registry.js";
import { checkSampledKdLoss, checkSparseKdLoss, checkSparseTargetOptions } from "../losses/sparse-targets.js";
import { TeacherServiceError } from "../service/errors.js";
import type { ServedTeachers } from "../service/served-teachers.js";
import { DataFeed } from "../train/data.js";
import type { StepFeed, StepHooks } from "../train/hooks.js";
import { runTraining, type TrainResult } from "../train/loop.js";
import type { ObjectivePlan, TeacherServiceLinkInput, TermSpecInput } from "../train/plan.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import { TokenizerHandle } from "../worker/tokenizer-handle.js";
import type { WorkerLink } from "../worker/worker-link.js";
import {
  type DistillationConfigLike,
  parseDistillationConfig,
  parseTrainingConfig,
  sameWorker,
  type TrainingConfigLike,
} from "./common.js";
import { distillerOptionKeys, type TrainOptions } from "./train-options.js";

export interface DistillerBaseOptions {
  trainConfig?: TrainingConfigLike;
  distillConfig?: DistillationConfigLike;
  student: ModelHandle;
}

/** Which teachers and adaptors a distiller runs (its objective is its terms()). */
export interface TeacherPlan {
  teachers: string[] | Record<string, string[]>;
  adaptorT: AdaptorSpec[] | Record<string, AdaptorSpec[]>;
  adaptorS: AdaptorSpec | Record<string, AdaptorSpec>;
  tasks?: string[];
}

/** The teachers and adaptors whose outputs a run may cache, and the matches whose teacher features it caches too. */
export interface CacheTarget {
  teachers: ModelHandle[];
  adaptorT: AdaptorSpec[];
  intermediateMatches?: IntermediateMatch[];
}

/**
 * One class per TextBrewer distiller compiles its configs into a plan: its teachers and adaptors, and the terms of
 * its objective (kd, hard_label, match, emd, or a kind registered in the worker); the loop is shared.
 */
export abstract class DistillerBase {
  readonly trainConfig: TrainingConfig;
  readonly distillConfig: DistillationConfig;
  readonly student: ModelHandle;

  constructor(options: DistillerBaseOptions) {
    this.trainConfig = parseTrainingConfig(options.trainConfig);
    this.distillConfig = parseDistillationConfig(options.distillConfig);
    this.student = options.student;
  }

  protected abstract teacherPlan(): TeacherPlan;
  /** The objective's terms, in the order the worker adds their weighted values. */
  protected abstract terms(): TermSpecInput[];
  /** Every model of the run, by the option name that holds it (for error messages). */
  protected abstract models(): Record<string, ModelHandle>;

  protected feed(options: TrainOptions): StepFeed {
    return new DataFeed(options.data);
  }

  protected get stepsOnly(): boolean {
    return false;
  }

  /** The train() option keys this distiller accepts besides the loop's. */
  protected optionKeys(): z.ZodRawShape {
    return distillerOptionKeys;
  }

  /** The teacher service the teachers' outputs come from, or null when they are models in the student's worker. */
  protected servedTeachers(): ServedTeachers | null {
    return null;
  }

  /** Causal-LM runs: on-policy sampling, and the counter of a micro-batch's target tokens the loop sums per step. */
  protected sequencePlan(): { onPolicy?: ObjectivePlan["onPolicy"]; countTokens?: (batch: Batch) => number } {
    return {};
  }

  /** The teachers and adaptors whose logits may be cached, or why this run cannot use the cache. */
  protected cacheable(): CacheTarget | string {
    return "this distiller does not cache teacher outputs";
  }

  /** A service client's top-k targets: a loss, temperature and cache that fit them, checked before any step. */
  private checkServedTopK(link: TeacherServiceLinkInput | null, options: TrainOptions): void {
    const topK = link?.topK ?? null;
    if (topK === null) return;
    checkSparseKdLoss(this.distillConfig.kdLossType, topK, "teacher service client topK");
    checkSparseTargetOptions(this.distillConfig, "the teacher service client's topK", topK);
    const requested = options.teacherCache ?? (this.distillConfig.isCachingLogits ? {} : false);
    if (requested === false) return;
    const spec = requested instanceof DistillCache ? requested.spec : requested;
    const same =
      (spec.topK ?? null) === topK &&
      (spec.tail ?? "ignore") === (link?.tail ?? "ignore") &&
      (spec.support ?? "teacher") === (link?.support ?? "teacher");
    if (!same) {
      throw new ConfigError("train options", [
        {
          path: "teacherCache",
          kind: "invalid_value",
          message:
            `the teacher service client sends top-k targets (topK ${topK}, tail '${link?.tail ?? "ignore"}', support '${link?.support ?? "teacher"}'), ` +
            "which the cache stores as they come; open the cache with the same topK, tail and support, or leave teacherCache out",
        },
      ]);
    }
  }

  private async openCache(options: TrainOptions): Promise<{ cache: DistillCache; owned: boolean } | null> {
    const requested = options.teacherCache ?? (this.distillConfig.isCachingLogits ? {} : false);
    if (requested === false) return null;
    const target = this.cacheable();
    if (typeof target === "string") {
      console.warn(`textbrewer-ts: teacher cache bypassed: ${target}`);
      return null;
    }
    const spec = requested instanceof DistillCache ? requested.spec : requested;
    checkSparseKdLoss(this.distillConfig.kdLossType, spec.topK);
    checkSampledKdLoss(this.distillConfig.kdLossType, spec.samples);
    if (spec.topK) checkSparseTargetOptions(this.distillConfig, "teacherCache.topK", spec.topK);
    else if (spec.samples) checkSparseTargetOptions(this.distillConfig, "teacherCache.samples", spec.samples);
    if (this.distillConfig.kdLossType === "uld") {
      throw new ConfigError("DistillationConfig", [
        {
          path: "kdLossType",
          kind: "invalid_value",
          message:
            "'uld' pairs the teacher's positions by its adaptor's labels or logits_mask, which a batch served from the " +
            "teacher cache does not compute; train ULD without teacherCache",
        },
      ]);
    }
    if (requested instanceof DistillCache) {
      const ids = target.teachers.map((m) => m.id);
      if (
        JSON.stringify(requested.teacherIds) !== JSON.stringify(ids) ||
        JSON.stringify(requested.adaptorT) !== JSON.stringify(target.adaptorT)
      ) {
        throw new Error("teacherCache: this cache was opened for other teachers or another teacher adaptor than this distiller's");
      }
      const difference = featureDifference(requested.features, featureRefs(target.intermediateMatches ?? []));
      if (difference.length) {
        throw new Error(
          `teacherCache: this cache was opened for other intermediate matches: ${difference.join("; ")}. ` +
            "Open it with DistillCache.open({ ..., intermediateMatches: distillConfig.intermediateMatches })",
        );
      }
      if ((requested.spec.topK || requested.spec.samples) && requested.spec.temperature !== this.distillConfig.temperature) {
        throw new Error(
          `teacherCache: ${requested.spec.topK ? "top-k logits" : "sampled targets"} were stored at temperature ${requested.spec.temperature}; this run uses ${this.distillConfig.temperature}`,
        );
      }
      return { cache: requested, owned: false };
    }
    const cache = await DistillCache.open({
      ...requested,
      teachers: target.teachers,
      adaptorT: target.adaptorT,
      temperature: this.distillConfig.temperature,
      ...(target.intermediateMatches?.length
        ? { intermediateMatches: target.intermediateMatches, mmdMaskedDivisor: this.distillConfig.mmdMaskedDivisor }
        : {}),
    });
    return { cache, owned: true };
  }

  /** Runs the shared loop with this distiller's plan. */
  protected async run(options: TrainOptions): Promise<TrainResult> {
    const worker = sameWorker({ student: this.student, ...this.models() }, this.trainConfig);
    const teacherPlan = this.teacherPlan();
    const served = this.servedTeachers();
    const link = served ? await served.link() : null;
    this.checkServedTopK(link, options);
    const opened = await this.openCache(options);
    const hooks = opened?.cache.hooks();
    let result: TrainResult;
    try {
      result = await this.loop(worker, teacherPlan, link, hooks, options);
    } catch (error) {
      // The training error is the one to report; a close that then fails too (a crashed worker, a full disk) adds nothing.
      await this.release(opened).catch(() => undefined);
      throw served ? TeacherServiceError.from(error, served.endpoint) : error;
    }
    await this.release(opened);
    return result;
  }

  private async release(opened: { cache: DistillCache; owned: boolean } | null): Promise<void> {
    if (opened?.owned) await opened.cache.close();
    else await opened?.cache.flush();
  }

  private loop(
    worker: WorkerLink,
    teacherPlan: TeacherPlan,
    link: TeacherServiceLinkInput | null,
    hooks: StepHooks | undefined,
    options: TrainOptions,
  ): Promise<TrainResult> {
    const d = this.distillConfig;
    const { onPolicy, countTokens } = this.sequencePlan();
    return runTraining(
      {
        worker,
        student: this.student,
        // the link (its credentials) goes to the worker only, never into the checkpoints' configs
        plan: {
          ...teacherPlan,
          student: this.student.id,
          terms: withTokenizers(this.terms(), options),
          customLosses: customLossPlan(),
          teacherService: link,
          ...(onPolicy ? { onPolicy } : {}),
        },
        trainConfig: this.trainConfig,
        configs: { trainConfig: this.trainConfig, distillConfig: d, ...teacherPlan },
        feed: this.feed(options),
        stepsOnly: this.stepsOnly,
        optionKeys: this.optionKeys(),
        ...(hooks ? { hooks } : {}),
        ...(countTokens ? { countTokens } : {}),
      },
      options,
    );
  }
}

/** The KD term names the run's tokenizers (the worker compares their vocabularies before training). */
function withTokenizers(terms: TermSpecInput[], options: TrainOptions): TermSpecInput[] {
  const t = options.tokenizers;
  if (t === undefined) return terms;
  if (!(t.teacher instanceof TokenizerHandle) || !(t.student instanceof TokenizerHandle)) {
    throw new ConfigError("train options", [
      { path: "tokenizers", kind: "invalid_value", message: "expected { teacher, student }, each from worker.loadTokenizer(...)" },
    ]);
  }
  const ids = { teacher: t.teacher.id, student: t.student.id };
  return terms.map((term) => (term.kind === "kd" ? { ...term, tokenizers: ids } : term));
}
