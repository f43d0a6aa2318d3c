/**
 * `npm run bench:cache`: step time of distillation with the teacher-output cache against a live teacher and against
 * the student trained alone (the floor a cached step can reach), for a teacher three times the student's depth.
 * Prints JSON.
 *
 * Modes, each a short run of BENCH_WARMUP + BENCH_STEPS steps on the same batches:
 *   student        BasicTrainer, the student alone
 *   cached         BasicDistiller, KD on logits, every batch served by the cache (filled once before the rounds)
 *   live           BasicDistiller, the teacher run every step
 *   featuresCached GeneralDistiller, KD plus hidden_mse S0↔T0, S1↔T3, S2↔T6: logits and float16 features cached
 *   featuresLive   the same GeneralDistiller with the teacher run every step
 * The machine's speed drifts by 2× within minutes (other tenants), so the modes alternate in BENCH_ROUNDS short
 * rounds (the order reversed every round: bench/rounds.ts), step times are the intervals between optimizer-step
 * replies (metrics.jsonl `time`), and each ratio comes with a bootstrap interval that resamples whole rounds.
 *
 * Knobs: BENCH_ROUNDS (6), BENCH_STEPS (8), BENCH_WARMUP (2).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { IntermediateMatchInput } from "../src/config/distillation-config.js";
import { BasicDistiller, BasicTrainer, DistillCache, GeneralDistiller, type ModelHandle, Worker } from "../src/index.js";
import { makeTinyBert } from "../test/helpers/fixtures.js";
import { emitResult } from "./emit.js";
import { bootstrapRatioCI, median, r3, r4, roundOrder } from "./rounds.js";
import { syntheticBatches } from "./synthetic-batches.js";

function intEnv(name: string, fallback: number, min = 1): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer ≥ ${min}, got '${v}'`);
  return n;
}

const ROUNDS = intEnv("BENCH_ROUNDS", 6);
const STEPS = intEnv("BENCH_STEPS", 8);
const WARMUP = intEnv("BENCH_WARMUP", 2, 1);
const BATCH = 32;
const SEQ = 64;
const MODEL = { hidden: 256, heads: 4, vocab: 1000, numLabels: 4, dropout: 0.1 };
const TEACHER_LAYERS = 6;
const STUDENT_LAYERS = 2;
const MATCHES: IntermediateMatchInput[] = [
  { layerS: 0, layerT: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
  { layerS: 1, layerT: 3, feature: "hidden", loss: "hidden_mse", weight: 1 },
  { layerS: 2, layerT: 6, feature: "hidden", loss: "hidden_mse", weight: 1 },
];

type Mode = "student" | "cached" | "live" | "featuresCached" | "featuresLive";
const MODES: Mode[] = ["student", "cached", "live", "featuresCached", "featuresLive"];

const t0 = Date.now();
function log(msg: string): void {
  process.stderr.write(`[bench:cache ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}

/** The same BATCH × SEQ batches for every run. */
const batches = syntheticBatches(WARMUP + STEPS, BATCH, SEQ);

const logits = (_b: any, o: any) => ({ logits: o.logits });
const withHidden = (b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask });

/** The STEPS step times (seconds) after the warm-up: intervals between consecutive optimizer-step replies. */
function stepSeconds(outputDir: string): number[] {
  const times = readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { time: number }).time);
  return times.slice(WARMUP).map((t, i) => t - times[WARMUP - 1 + i]!);
}

const dir = mkdtempSync(join(tmpdir(), "tbts-bench-cache-"));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}
log("building teacher and student (random BERT, HF folders)…");
await makeTinyBert(join(dir, "teacher"), { ...MODEL, layers: TEACHER_LAYERS, seed: 1 });
await makeTinyBert(join(dir, "student"), { ...MODEL, layers: STUDENT_LAYERS, seed: 2 });
const worker = await Worker.start({ device: "cpu" });
const teacher = await worker.loadModel({ path: join(dir, "teacher"), task: "sequence-classification" });
const data = batches;

log("filling the caches (teacher only, once)…");
const logitsCache = await DistillCache.open({ teachers: teacher, adaptorT: logits });
const featuresCache = await DistillCache.open({
  teachers: teacher,
  adaptorT: withHidden,
  intermediateMatches: MATCHES,
  featureDtype: "float16",
});
await logitsCache.fill({ data });
await featuresCache.fill({ data });

const steps: Record<Mode, number[][]> = { student: [], cached: [], live: [], featuresCached: [], featuresLive: [] };
let runs = 0;

async function run(mode: Mode): Promise<void> {
  const student: ModelHandle = await worker.loadModel({ path: join(dir, "student"), task: "sequence-classification" });
  const outputDir = join(dir, `${mode}-${++runs}`);
  const trainConfig = { outputDir, device: "cpu", ckptEpochFrequency: 1000, seed: 7 };
  const options = { optimizer: { lr: 1e-4 }, data, numEpochs: 1, progress: false };
  const features = mode === "featuresCached" || mode === "featuresLive";
  const cache = mode === "cached" ? logitsCache : mode === "featuresCached" ? featuresCache : false;
  const forwards = cache ? cache.stats.teacherForwards : 0;
  try {
    if (mode === "student") {
      await new BasicTrainer({ trainConfig, model: student, adaptor: (_b: any, o: any) => ({ losses: o.loss }) }).train(options);
    } else if (features) {
      const distillConfig = { intermediateMatches: MATCHES };
      await new GeneralDistiller({ trainConfig, distillConfig, teacher, student, adaptorT: withHidden, adaptorS: withHidden }).train({
        ...options,
        teacherCache: cache,
      });
    } else {
      await new BasicDistiller({ trainConfig, teacher, student, adaptorT: logits, adaptorS: logits }).train({
        ...options,
        teacherCache: cache,
      });
    }
  } finally {
    await student.dispose();
  }
  if (cache && cache.stats.teacherForwards !== forwards) throw new Error(`${mode}: a cached run ran the teacher`);
  const seconds = stepSeconds(outputDir);
  steps[mode].push(seconds);
  rmSync(outputDir, { recursive: true, force: true });
  log(`${mode}: median ${(median(seconds) * 1000).toFixed(1)} ms/step over ${seconds.length} steps`);
}

for (let r = 0; r < ROUNDS; r++) {
  log(`round ${r + 1}/${ROUNDS}`);
  for (const mode of roundOrder(MODES, r)) await run(mode);
}

/** median(b) / median(a) over all rounds, per round, and its bootstrap interval resampling whole rounds. */
function ratio(b: Mode, a: Mode): Record<string, unknown> {
  const all = (m: Mode) => steps[m].flat();
  const perRound = steps[a].map((xs, i) => median(steps[b][i]!) / median(xs));
  return {
    ratio: r4(median(all(b)) / median(all(a))),
    bootstrap95: bootstrapRatioCI(steps[a].map((xs, i) => ({ a: xs, b: steps[b][i]! }))),
    perRound: perRound.map(r4),
  };
}

emitResult("cache", {
  workload: {
    teacherLayers: TEACHER_LAYERS,
    studentLayers: STUDENT_LAYERS,
    hidden: MODEL.hidden,
    batch: BATCH,
    seq: SEQ,
    matches: "hidden_mse S0↔T0, S1↔T3, S2↔T6 (featuresCached: float16 features, float32 logits)",
    rounds: ROUNDS,
    stepsPerRun: STEPS,
    warmup: WARMUP,
  },
  medianStepMs: Object.fromEntries(MODES.map((m) => [m, r3(median(steps[m].flat()) * 1000)])),
  ratios: {
    // what the cache itself costs: 1.0 is a cached step as fast as the student alone
    cachedOverStudent: ratio("cached", "student"),
    // the speedup of the cache, and the most any cache can give on this workload
    liveOverCached: ratio("live", "cached"),
    liveOverStudent: ratio("live", "student"),
    featuresLiveOverFeaturesCached: ratio("featuresLive", "featuresCached"),
    featuresCachedOverStudent: ratio("featuresCached", "student"),
  },
  featureBytesPerExample: MATCHES.length * SEQ * MODEL.hidden * 2,
  stepMs: Object.fromEntries(MODES.map((m) => [m, steps[m].map((xs) => xs.map((s) => r3(s * 1000)))])),
  environment: {
    torch: worker.info.torch,
    threads: worker.info.threads,
    device: worker.info.device,
    cpu: cpus()[0]?.model,
    node: process.version,
    date: new Date().toISOString(),
  },
});
await Promise.all([logitsCache.close(), featuresCache.close()]);
await worker.close();
rmSync(dir, { recursive: true, force: true });
