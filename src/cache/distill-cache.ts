/**
 * The teacher-output cache as a distiller uses it: opened for given teachers and adaptor (fingerprinted by their
 * weights and spec), filled by a teacher-only pass or write-through while training, and consulted per batch so a
 * batch whose examples are all cached skips the teacher forward.
 */
import { type Adaptor, type AdaptorSpec, toAdaptorSpec } from "../adaptor/index.js";
import type { IntermediateMatchInput } from "../config/distillation-config.js";
import { isServedTeachers, type ServedTeachers } from "../service/served-teachers.js";
import { Tensor } from "../tensor/tensor.js";
import { DataFeed, iterate } from "../train/data.js";
import type { PreparedStep, StepHooks, StepItem, StepReply } from "../train/hooks.js";
import type { DataSource } from "../train/options.js";
import type { Batch, ModelHandle } from "../worker/model-handle.js";
import type { StorageDType } from "./convert.js";
import { crc32 } from "./crc32.js";
import type { CacheWriteErrorPolicy } from "./errors.js";
import { type FeatureDType, type FeaturePlan, featurePlan, featureTensorCount, refName } from "./features.js";
import {
  type FeatureFidelityOptions,
  type FeatureFidelityReport,
  type FidelityOptions,
  type FidelityReport,
  measureFeatureFidelity,
  measureFidelity,
} from "./fidelity.js";
import { TeacherCache } from "./teacher-cache.js";

export interface TeacherCacheSpec {
  /** Disk tier folder (survives the process); memory only when absent. */
  dir?: string;
  /** Storage dtype of logits. Default float32. */
  dtype?: StorageDType;
  /**
   * Storage form of the teacher features cached for intermediate matches: "float32" (default), "float16", or
   * "int8" with one float32 scale per row (see `fidelity()` for what each costs in match loss and bytes).
   */
  featureDtype?: FeatureDType;
  /** Keep only the top-k teacher log-probabilities per row (for vocabulary-sized logits); needs a constant temperature. */
  topK?: number | null;
  /**
   * With topK, how the teacher's missing mass is completed: "ignore" renormalises the top-k, "uniform" spreads it
   * evenly over the other classes, "bucket" keeps it as one tail entry (kdLossType token_kl, token_reverse_kl,
   * token_jsd only).
   */
  tail?: "ignore" | "uniform" | "bucket";
  /**
   * Keep n token ids per row drawn from the teacher's distribution at the temperature (with replacement, seeded by
   * the batch's examples) and the teacher's log-probability of each, instead of logits or top-k: unbiased targets
   * for kdLossType ce, kl and token_kl. Needs a constant temperature.
   */
  samples?: number | null;
  /** With topK and a token loss: the support is the teacher's top-k ("teacher", default) or its union with the student's ("both"). */
  support?: "teacher" | "both";
  /** Rebuild a folder filled for another teacher/adaptor/setting instead of refusing it. */
  rebuild?: boolean;
  /** Batch tensor with example ids (int64 [B]); it is removed before the forward. Default: key examples by content. */
  idKey?: string;
  /** Memory tier budget in bytes (default 256 MiB). */
  memoryBytes?: number;
  /** Describe your data preprocessing (tokenizer, max length…): a change refuses the old cache. */
  preprocessing?: string;
  /** A disk-tier write that fails (a full disk): "raise" CacheWriteError (default), or "continue" uncached with one warning. */
  onWriteError?: CacheWriteErrorPolicy;
}

export interface OpenDistillCacheOptions extends TeacherCacheSpec {
  /** The teachers; or a teacher service this script started (its teachers and adaptors). */
  teachers: ModelHandle | ModelHandle[] | ServedTeachers;
  /** One adaptor for all teachers, or one per teacher (left out with a teacher service). */
  adaptorT?: Adaptor | Adaptor[];
  /** The distillation temperature; part of the fingerprint with topK (the stored log-probabilities depend on it). */
  temperature?: number;
  /**
   * The matches whose teacher features to cache (GeneralDistiller's distillConfig.intermediateMatches): the entries
   * of the teacher adaptor's hidden / attention lists they read (layerT), after the adaptor. Absent: logits only.
   */
  intermediateMatches?: IntermediateMatchInput[];
  /** With intermediateMatches: the divisor of masked mmd/nst in the fidelity report's match losses. */
  mmdMaskedDivisor?: "hidden" | "length";
}

export interface CacheCounters {
  teacherForwards: number;
  teacherForwardsSkipped: number;
  cacheHits: number;
  cacheMisses: number;
}

type Batchlike = Record<string, Tensor>;

function asRecord(batch: Batch, where: string): Batchlike {
  if (batch instanceof Tensor || Array.isArray(batch)) {
    throw new Error(`${where}: the teacher cache keys examples by the batch's named tensors; pass batches as records`);
  }
  const rec = batch as Record<string, unknown>;
  if ("teacher" in rec && "student" in rec) return rec.teacher as Batchlike; // split batches: key by the teacher's half
  return rec as Batchlike;
}

function withoutKey(batch: Batch, key: string | undefined): Batch {
  if (!key || batch instanceof Tensor || Array.isArray(batch)) return batch;
  const strip = (b: Record<string, unknown>) => Object.fromEntries(Object.entries(b).filter(([k]) => k !== key));
  const rec = batch as Record<string, unknown>;
  if ("teacher" in rec && "student" in rec) return { teacher: strip(rec.teacher as never), student: strip(rec.student as never) } as never;
  return strip(rec) as Batch;
}

/** A step in flight that will write its examples' teacher outputs. */
interface WriteState {
  keys: string[];
  done: Promise<void>;
  settle: () => void;
}

export class DistillCache {
  readonly teacherIds: string[];
  readonly adaptorT: AdaptorSpec[];
  private readonly counters: CacheCounters = { teacherForwards: 0, teacherForwardsSkipped: 0, cacheHits: 0, cacheMisses: 0 };

  private constructor(
    readonly store: TeacherCache,
    private readonly teachers: ModelHandle[],
    adaptorT: AdaptorSpec[],
    readonly spec: TeacherCacheSpec & { temperature: number },
    /** The teacher features held besides the logits; null for a logits-only cache. */
    readonly features: FeaturePlan | null,
  ) {
    this.teacherIds = teachers.map((t) => t.id);
    this.adaptorT = adaptorT;
  }

  static async open(input: OpenDistillCacheOptions): Promise<DistillCache> {
    const options = isServedTeachers(input.teachers) ? servedCacheOptions(input, input.teachers) : input;
    const teachers = Array.isArray(options.teachers) ? options.teachers : [options.teachers as ModelHandle];
    if (!teachers.length) throw new Error("teacherCache: give the teacher(s) whose outputs are cached");
    if (options.adaptorT === undefined)
      throw new Error("teacherCache.adaptorT: missing; give the teacher adaptor (one, or one per teacher)");
    const adaptors = (Array.isArray(options.adaptorT) ? options.adaptorT : teachers.map(() => options.adaptorT as Adaptor)).map((a) =>
      toAdaptorSpec(a),
    );
    const topK = options.topK ?? null;
    if (topK !== null && (!Number.isInteger(topK) || topK < 1))
      throw new Error(`teacherCache.topK: expected a positive integer, got ${topK}`);
    const samples = options.samples ?? null;
    if (samples !== null && (!Number.isInteger(samples) || samples < 1))
      throw new Error(`teacherCache.samples: expected a positive integer (draws per token), got ${samples}`);
    if (samples !== null && topK !== null)
      throw new Error(`teacherCache: topK (${topK}) and samples (${samples}) are two sparse forms; keep one of them`);
    const temperature = options.temperature ?? 1;
    const features = featurePlan(options.intermediateMatches, options.featureDtype, options.mmdMaskedDivisor);
    if (features !== null && samples !== null) {
      throw new Error(
        `teacherCache.samples: ${samples} with intermediate matches is not supported: the features' cache stores dense logits; use samples: null`,
      );
    }
    if (features !== null && topK !== null) {
      throw new Error(
        `teacherCache.topK: ${topK} with intermediate matches is not supported: the features' cache stores dense logits; use topK: null`,
      );
    }
    const weights = await Promise.all(teachers.map((t) => t.worker.call("model_fingerprint", { model: t.id })));
    const dtype = options.dtype ?? "float32";
    const store = await TeacherCache.open({
      ...(options.dir !== undefined ? { dir: options.dir } : {}),
      dtype,
      ...(options.memoryBytes !== undefined ? { memoryBytes: options.memoryBytes } : {}),
      ...(options.rebuild !== undefined ? { rebuild: options.rebuild } : {}),
      ...(options.idKey !== undefined ? { idKey: options.idKey } : {}),
      ...(options.onWriteError !== undefined ? { onWriteError: options.onWriteError } : {}),
      fingerprintParts: {
        teacherWeights: weights.join("+"),
        adaptor: adaptors,
        dtype,
        topK,
        samples,
        temperature: topK !== null || samples !== null ? temperature : null,
        preprocessing: options.preprocessing ?? "",
        ...(features ? { features: features.refs.map(refName), featureDtype: features.dtype } : {}),
      },
    });
    return new DistillCache(store, teachers, adaptors, { ...options, temperature, topK, samples }, features);
  }

  get stats(): CacheCounters & { corrupt: number; recovered: number } {
    const s = this.store.stats;
    return { ...this.counters, corrupt: s.corrupt, recovered: s.recovered };
  }

  /**
   * Before a full fill: on the first batches of the data, the KL between the teacher's full distribution and its
   * top-k and sampled forms, and the bytes per token of each (one report per logits tensor). Stores nothing.
   */
  fidelity(options: FidelityOptions): Promise<FidelityReport[]>;
  /**
   * With `student` and `adaptorS`, for a cache with features: on the first batches, each match's loss from the live
   * teacher features and from each storage form of them (absolute and relative difference), and the bytes per
   * example of each form; `report.table` prints it. Stores nothing.
   */
  fidelity(options: FeatureFidelityOptions): Promise<FeatureFidelityReport>;
  fidelity(options: FidelityOptions | FeatureFidelityOptions): Promise<FidelityReport[] | FeatureFidelityReport> {
    const strip = (b: Batch) => withoutKey(b, this.spec.idKey);
    if ("student" in options) {
      if (this.features === null) {
        const message = "fidelity: this cache holds logits only; open it with intermediateMatches to measure cached features";
        return Promise.reject(new Error(message));
      }
      return measureFeatureFidelity(this.teachers[0]!, this.adaptorT[0]!, this.features, strip, options);
    }
    return measureFidelity(this.teachers, this.adaptorT, this.spec.temperature, strip, options);
  }

  /** Teacher-only pass without gradients over the data (epoch 0 of a DataSource); merges batches up to batchSize examples. */
  async fill(options: { data: DataSource; batchSize?: number; forwardArgs?: Record<string, unknown> }): Promise<CacheCounters> {
    const worker = this.teachers[0]!.worker;
    const limit = options.batchSize ?? 0;
    let pending: Batchlike[] = [];
    const flush = async (): Promise<void> => {
      if (!pending.length) return;
      const merged = mergeBatches(pending);
      pending = [];
      for (const part of merged) {
        const keys = this.store.keys(part);
        if ((await this.store.getMany(keys)).every((r) => r !== null)) {
          this.counters.teacherForwardsSkipped++;
          continue;
        }
        const reply = await worker.call("teacher_logits", {
          teachers: this.teacherIds,
          adaptors: this.adaptorT,
          batch: withoutKey(part, this.spec.idKey),
          forwardArgs: options.forwardArgs,
          topK: this.spec.topK,
          samples: this.sampling(keys),
          temperature: this.spec.temperature,
          features: this.selection(),
        });
        this.counters.teacherForwards++;
        await this.store.putBatch(keys, Array.isArray(reply.logits) ? reply.logits : [reply.logits], reply.features ?? []);
      }
    };
    for await (const { batch } of iterate(new DataFeed(options.data).epoch(0).items)) {
      const rec = asRecord(batch, "teacherCache.fill");
      pending.push(rec);
      const examples = pending.reduce((n, b) => n + (Object.values(b)[0]?.shape[0] ?? 0), 0);
      if (examples >= limit) await flush();
    }
    await flush();
    await this.store.flush();
    return { ...this.counters };
  }

  /** Per-step hooks: serve cached teacher logits when every example of a batch is cached, else write through. */
  hooks(): StepHooks {
    const topK = this.spec.topK ?? null;
    const selection = this.selection();
    const featureTensors = featureTensorCount(this.features);
    const sampled = (this.spec.samples ?? null) !== null;
    // Examples whose teacher outputs a step in flight will write. A later batch with one of them waits for that
    // write rather than running the teacher again: with steps pipelined, the first batches of an epoch often hold
    // examples of the previous epoch's last batch, whose reply has not come yet. The wait costs one round trip.
    const writing = new Map<string, Promise<void>>();
    const release = (state: unknown): void => {
      const { keys, done, settle } = state as WriteState;
      settle();
      for (const k of keys) if (writing.get(k) === done) writing.delete(k);
    };
    return {
      beforeStep: async (item: StepItem): Promise<PreparedStep> => {
        const keys = this.store.keys(asRecord(item.batch, "teacherCache"));
        const batch = withoutKey(item.batch, this.spec.idKey);
        const waits = new Set(keys.flatMap((k) => writing.get(k) ?? []));
        if (waits.size) await Promise.all(waits);
        const cached = await this.store.getBatch(keys);
        if (cached) {
          this.counters.cacheHits += keys.length;
          this.counters.teacherForwardsSkipped++;
          if (selection !== null) {
            const logits = cached.slice(featureTensors);
            const teacherFeatures = { ...selection, tensors: cached.slice(0, featureTensors) };
            return { batch, args: { teacherFeatures, ...(logits.length ? { teacherLogits: logits } : {}) } };
          }
          const args = sampled
            ? { teacherTopK: { targets: cached, form: "sampled" as const } }
            : topK !== null
              ? { teacherTopK: { targets: cached, tail: this.spec.tail ?? "ignore", support: this.spec.support ?? "teacher" } }
              : { teacherLogits: cached };
          return { batch, args };
        }
        this.counters.cacheMisses += keys.length;
        this.counters.teacherForwards++;
        let settle!: () => void;
        const done = new Promise<void>((resolve) => (settle = resolve));
        for (const k of keys) writing.set(k, done);
        const state: WriteState = { keys, done, settle };
        if (selection !== null) return { batch, args: { returnTeacherFeatures: selection }, state };
        const sparse = sampled ? { returnSamples: this.sampling(keys) } : topK !== null ? { returnTopK: topK } : {};
        return { batch, args: { returnTeacherLogits: true, ...sparse }, state };
      },
      afterStep: async (prepared: PreparedStep, reply: StepReply): Promise<void> => {
        if (!prepared.state) return;
        try {
          const keys = (prepared.state as WriteState).keys;
          if (selection !== null) {
            if (reply.teacherFeatures) await this.store.putBatch(keys, reply.teacherLogits ?? [], reply.teacherFeatures);
          } else if (reply.teacherLogits) await this.store.putBatch(keys, reply.teacherLogits);
        } finally {
          release(prepared.state);
        }
      },
      stepFailed: (prepared: PreparedStep): void => {
        if (prepared.state) release(prepared.state);
      },
      metrics: () => ({ ...this.counters }),
    };
  }

  /** The sampled form's draws for these examples: seeded by their keys, so a refill draws the same ids. */
  private sampling(keys: readonly string[]): { n: number; seed: number } | null {
    const n = this.spec.samples ?? null;
    return n === null ? null : { n, seed: crc32(new TextEncoder().encode(keys.join("\n"))) };
  }

  async flush(): Promise<void> {
    await this.store.flush();
  }

  /** The features the worker returns and reads, in record order; null for a logits-only cache. */
  private selection(): { items: FeaturePlan["refs"]; dtype: FeatureDType } | null {
    return this.features ? { items: this.features.refs, dtype: this.features.dtype } : null;
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}

/** A service's teachers and adaptors as the cache's (they run in the service's worker). */
function servedCacheOptions(options: OpenDistillCacheOptions, service: ServedTeachers): OpenDistillCacheOptions {
  if (options.adaptorT !== undefined) throw new Error("teacherCache.adaptorT: the teacher service applies its own adaptorT; leave it out");
  if (!service.teacherModels) {
    throw new Error(
      `teacherCache.teachers: the service at ${service.endpoint} was started by another script; open the cache there (or with its models)`,
    );
  }
  return { ...options, teachers: [...service.teacherModels], adaptorT: [...service.adaptorT] };
}

/** Concatenates consecutive batches whose tensors agree beyond the first dimension; others stay separate. */
function mergeBatches(batches: Batchlike[]): Batchlike[] {
  const out: Batchlike[][] = [];
  const signature = (b: Batchlike) =>
    Object.entries(b)
      .map(([k, t]) => `${k}:${t.dtype}:${t.shape.slice(1).join("x")}`)
      .sort()
      .join("|");
  for (const b of batches) {
    const last = out[out.length - 1];
    if (last && signature(last[0]!) === signature(b)) last.push(b);
    else out.push([b]);
  }
  return out.map((group) => {
    if (group.length === 1) return group[0]!;
    return Object.fromEntries(
      Object.keys(group[0]!).map((k) => {
        const parts = group.map((b) => b[k]!);
        const first = parts[0]!;
        const rows = parts.reduce((n, t) => n + t.shape[0]!, 0);
        const merged = Tensor.zeros([rows, ...first.shape.slice(1)], first.dtype);
        const bytes = merged.bytes();
        let offset = 0;
        for (const t of parts) {
          bytes.set(t.bytes(), offset);
          offset += t.bytes().byteLength;
        }
        return [k, merged];
      }),
    );
  });
}
