/**
 * Distillation benchmark: step time of textbrewer-ts (b) against a plain PyTorch loop (a, bench/plain_loop.py)
 * doing the same work on the same batches with the same optimizer, on CPU.
 *
 *   npm run bench            (one JSON object on stdout, progress lines on stderr)
 *
 * Workloads (teacher: BERT 4 layers, hidden 256, 4 heads, intermediate 1024, vocab 1000; student: 2 layers, same
 * width; both random-initialised and saved as Hugging Face folders in a temporary directory):
 *   kd      BasicDistiller, KD cross-entropy at T = 4 (hard-label weight 0: the adaptors return logits only)
 *   hidden  GeneralDistiller, the same KD plus hidden_mse S0↔T0, S1↔T2, S2↔T4 masked by inputs_mask
 * The two sides run interleaved in one invocation, alternating which goes first (A B, B A, …), so machine drift
 * cancels. (b)'s step times are the intervals between consecutive optimizer-step replies (metrics.jsonl `time`),
 * i.e. everything the user waits for; (a)'s are perf_counter around forward + backward + optimizer step.
 *
 * Environment knobs:
 *   BENCH_STEPS (12)           measured steps per run, after BENCH_WARMUP (3) warm-up steps
 *   BENCH_REPEATS (5)          A/B pairs per workload
 *   BENCH_BATCH (32), BENCH_SEQ (128)   batch size and sequence length of the main comparison
 *   BENCH_WORKLOADS            comma-separated workloads of the main comparison (default "kd,hidden")
 *   BENCH_SCALING (1)          0 skips the batch / sequence-length sweep
 *   BENCH_SCALING_STEPS (6)    measured steps per sweep point, after BENCH_SCALING_WARMUP (2)
 *   BENCH_SCALING_REPEATS (2)  A/B pairs per sweep point
 *   BENCH_SCALING_WORKLOADS    comma-separated workloads of the sweep (default "kd,hidden")
 *   BENCH_SEED (0)             batches and dropout
 *   BENCH_MODE (steps)         how the two sides share the machine:
 *                                steps      one fresh worker per pair runs both, alternating single steps (a, b, a,
 *                                           b, …): (a) through Worker.runPython on the plain loop's own models,
 *                                           (b) through the distiller; (b)'s step is the interval between its
 *                                           replies less the (a) step run inside it
 *                                runs       one fresh worker per pair runs (a) and then (b) whole, or (b) then (a)
 *                                processes  (a) its own Python process, (b) its own worker, as a user runs them
 *                              Separate processes of the very same loop differ in speed on a small VM, and the
 *                              machine's speed drifts within seconds; alternating steps cancels both (README.md).
 *   BENCH_FRESH_WORKER (1)     0: one worker serves every run instead of a fresh one per run (or per pair)
 *   BENCH_QUIET_WAIT (0)       before each run, wait up to this many seconds for other processes to go quiet, and
 *                              measure a pair again (up to BENCH_RETRIES (3) times) when others used > 0.15 cores
 *                              during it; for shared machines
 *   BENCH_THREADS              torch threads of both sides (OMP_NUM_THREADS); default: torch's default
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { pythonEnv, resolvePython } from "../src/env/python-env.js";
import { BasicDistiller, GeneralDistiller, type ModelHandle, Tensor, Worker } from "../src/index.js";
import { emitResult } from "./emit.js";
import { bootstrapRatioCI, hash32, median, quantile, r3, r4, roundOrder } from "./rounds.js";

type Workload = "kd" | "hidden";
type Side = "a" | "b";

const HERE = dirname(fileURLToPath(import.meta.url));
const PLAIN_LOOP = join(HERE, "plain_loop.py");

const STEPS = intEnv("BENCH_STEPS", 12);
const WARMUP = intEnv("BENCH_WARMUP", 3, 0);
const REPEATS = intEnv("BENCH_REPEATS", 5);
const SCALING = (process.env.BENCH_SCALING ?? "1") !== "0";
const SCALING_STEPS = intEnv("BENCH_SCALING_STEPS", 6);
const SCALING_WARMUP = intEnv("BENCH_SCALING_WARMUP", 2, 0);
const SCALING_REPEATS = intEnv("BENCH_SCALING_REPEATS", 2);
const WORKLOADS = workloadList("BENCH_WORKLOADS");
const SCALING_WORKLOADS = workloadList("BENCH_SCALING_WORKLOADS");
const SEED = intEnv("BENCH_SEED", 0, 0);
/** (b) starts a fresh worker per run, as (a) is a fresh process per run; 0 shares one worker. */
const FRESH_WORKER = (process.env.BENCH_FRESH_WORKER ?? "1") !== "0";
type Mode = "steps" | "runs" | "processes";
const MODE = ((): Mode => {
  const m = process.env.BENCH_MODE ?? "steps";
  if (m !== "steps" && m !== "runs" && m !== "processes") throw new Error(`BENCH_MODE: expected steps, runs or processes, got '${m}'`);
  return m;
})();
const SAME_PROCESS = MODE !== "processes";
/** Torch threads of both sides; unset leaves torch's default (the number of cores) to both. */
const QUIET_WAIT = intEnv("BENCH_QUIET_WAIT", 0, 0);
/** With BENCH_QUIET_WAIT, a pair during which others used more than this many cores is measured again. */
const BUSY_LIMIT = 0.15;
const RETRIES = intEnv("BENCH_RETRIES", 3, 0);
const THREADS = process.env.BENCH_THREADS ? String(intEnv("BENCH_THREADS", 1)) : null;
const THREAD_ENV: Record<string, string> = THREADS ? { OMP_NUM_THREADS: THREADS, MKL_NUM_THREADS: THREADS } : {};

const MODEL = { vocab: 1000, hidden: 256, heads: 4, intermediate: 1024, numLabels: 2, teacherLayers: 4, studentLayers: 2 };
const LR = 1e-4;
const TEMPERATURE = 4;
const MAIN = { batchSize: intEnv("BENCH_BATCH", 32), seqLen: intEnv("BENCH_SEQ", 128) };
const SWEEP_REF = { batchSize: 32, seqLen: 128 };
const BATCH_SWEEP = [8, 32, 128];
const SEQ_SWEEP = [64, 128, 256];

function workloadList(name: string): Workload[] {
  const list = (process.env[name] ?? "kd,hidden")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const w of list) if (w !== "kd" && w !== "hidden") throw new Error(`${name}: unknown workload '${w}' (kd, hidden)`);
  return list as Workload[];
}

function intEnv(name: string, fallback: number, min = 1): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer ≥ ${min}, got '${v}'`);
  return n;
}

const t0 = Date.now();
function log(msg: string): void {
  process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}

const ms = (seconds: number): number => Number((seconds * 1000).toFixed(1));

// ---------------------------------------------------------------------------------------------------------------
// batches: the same formula as make_batch in plain_loop.py

interface Checksum {
  ids: number;
  labels: number;
  first: number[];
}

function makeBatch(seed: number, index: number, batchSize: number, seqLen: number): Record<string, Tensor> {
  const hb = hash32(hash32(seed) ^ index);
  const ids = new BigInt64Array(batchSize * seqLen);
  const labels = new BigInt64Array(batchSize);
  const mask = new BigInt64Array(batchSize * seqLen).fill(1n);
  for (let i = 0; i < batchSize; i++) {
    const row = hash32(hb ^ i);
    for (let j = 0; j < seqLen; j++) ids[i * seqLen + j] = BigInt(1 + (hash32(row ^ j) % (MODEL.vocab - 1)));
    labels[i] = BigInt(hash32((row ^ 0xffffffff) >>> 0) % MODEL.numLabels);
  }
  return {
    input_ids: Tensor.fromTypedArray(ids, [batchSize, seqLen], "int64"),
    attention_mask: Tensor.fromTypedArray(mask, [batchSize, seqLen], "int64"),
    labels: Tensor.fromTypedArray(labels, [batchSize], "int64"),
  };
}

function checksum(batches: Record<string, Tensor>[]): Checksum {
  let ids = 0;
  let labels = 0;
  for (const b of batches) {
    for (const v of b.input_ids!.data as BigInt64Array) ids += Number(v);
    for (const v of b.labels!.data as BigInt64Array) labels += Number(v);
  }
  const first = Array.from((batches[0]!.input_ids!.data as BigInt64Array).subarray(0, 4), Number);
  return { ids, labels, first };
}

// ---------------------------------------------------------------------------------------------------------------
// the two sides

interface RunSpec {
  workload: Workload;
  batchSize: number;
  seqLen: number;
  warmup: number;
  steps: number;
}

interface RunResult {
  stepTimes: number[];
  /** CPU seconds per measured step: (a) the plain process; (b) the worker plus this Node process. */
  cpuTimes: number[];
  /** (b) only: the worker's and Node's shares of cpuTimes. */
  cpuWorker?: number[];
  cpuNode?: number[];
  /** (b) only: milliseconds the worker waited for Node during each measured step (metrics.jsonl workerIdleMs). */
  workerIdleMs?: number[];
  losses: number[];
  /** The whole run as the caller waits for it (a: the process incl. imports and loading; b: train()). */
  runSeconds: number;
  /** CPU seconds of the run's Python process over the run (a: the whole process; b: the worker). */
  ownCpuSeconds: number;
  /** Cores' worth of CPU that other processes on the machine used during the run (set by pair()). */
  foreignLoad?: number;
  threads?: number;
  torch?: string;
  checksum?: Checksum;
}

interface Models {
  teacher: string;
  student: string;
}

async function python(args: string[]): Promise<string> {
  const { python: exe } = resolvePython();
  const r = await execa(exe, args, { env: pythonEnv(THREAD_ENV) });
  return String(r.stdout);
}

async function buildModels(dir: string): Promise<Models> {
  const code = `
import sys, torch
from transformers import BertConfig, BertForSequenceClassification
for name, layers, seed in [("teacher", ${MODEL.teacherLayers}, 1), ("student", ${MODEL.studentLayers}, 2)]:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=${MODEL.vocab}, hidden_size=${MODEL.hidden}, num_hidden_layers=layers,
                     num_attention_heads=${MODEL.heads}, intermediate_size=${MODEL.intermediate}, num_labels=${MODEL.numLabels},
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertForSequenceClassification(cfg).save_pretrained(sys.argv[1] + "/" + name, safe_serialization=True)
`;
  await python(["-c", code, dir]);
  return { teacher: join(dir, "teacher"), student: join(dir, "student") };
}

interface PlainOutput {
  stepTimes: number[];
  cpuTimes: number[];
  losses: number[];
  processCpuSeconds: number;
  threads: number;
  torch: string;
  checksum: Checksum;
}

/** (a) as its own Python process, or (BENCH_MODE runs) inside `host`, the worker that also runs (b). */
async function runPlain(models: Models, spec: RunSpec, host: Worker | null): Promise<RunResult> {
  const started = Date.now();
  const job = { ...models, ...spec, seed: SEED, lr: LR, temperature: TEMPERATURE };
  let out: PlainOutput;
  if (host) {
    const cpu0 = processCpuSeconds(host.pid);
    out = (await host.runPython(`${PLAIN_LOOP}:run_job`, job)) as PlainOutput;
    out.processCpuSeconds = processCpuSeconds(host.pid) - cpu0;
  } else {
    out = JSON.parse(await python([PLAIN_LOOP, JSON.stringify(job)])) as PlainOutput;
  }
  return {
    stepTimes: out.stepTimes,
    cpuTimes: out.cpuTimes,
    losses: out.losses,
    runSeconds: (Date.now() - started) / 1000,
    ownCpuSeconds: out.processCpuSeconds,
    threads: out.threads,
    torch: out.torch,
    checksum: out.checksum,
  };
}

const logitsOnly = (_b: any, o: any) => ({ logits: o.logits });
const withHidden = (b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask });

let runCounter = 0;

/** CPU seconds (user + system, all threads) of a process, from /proc/PID/stat (clock ticks of 1/100 s). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface CpuStamp {
  worker: number;
  node: number;
}
let cpuStamps: CpuStamp[] | null = null;

/** Records the worker's and this process's CPU time at every train_step reply (the bench's own wrapper). */
function recordStepCpu(worker: Worker): void {
  const call = worker.call.bind(worker);
  worker.call = async (op, ...rest) => {
    const result = await call(op, ...rest);
    if (op === "train_step" && cpuStamps) {
      const node = process.cpuUsage();
      cpuStamps.push({ worker: processCpuSeconds(worker.pid), node: (node.user + node.system) / 1e6 });
    }
    return result;
  };
}

async function startWorker(): Promise<Worker> {
  const worker = await Worker.start({ device: "cpu", env: THREAD_ENV });
  recordStepCpu(worker);
  return worker;
}

/** (b): a fresh worker per run (as (a) is a fresh process per run) unless BENCH_FRESH_WORKER=0 shares one. */
async function runTextBrewer(
  shared: { worker: Worker; teacher: ModelHandle } | null,
  models: Models,
  spec: RunSpec,
  scratch: string,
): Promise<RunResult> {
  const worker = shared?.worker ?? (await startWorker());
  try {
    const cpu0 = shared ? processCpuSeconds(worker.pid) : 0;
    const teacher = shared?.teacher ?? (await worker.loadModel({ path: models.teacher, task: "sequence-classification" }));
    const result = await distil(worker, teacher, models, spec, scratch);
    return { ...result, ownCpuSeconds: processCpuSeconds(worker.pid) - cpu0 };
  } finally {
    if (!shared) await worker.close();
  }
}

async function distil(
  worker: Worker,
  teacher: ModelHandle,
  models: Models,
  spec: RunSpec,
  scratch: string,
  feed: (batches: Record<string, Tensor>[]) => Record<string, Tensor>[] | AsyncIterable<Record<string, Tensor>> = (x) => x,
): Promise<Omit<RunResult, "ownCpuSeconds">> {
  const data = Array.from({ length: spec.warmup + spec.steps }, (_, i) => makeBatch(SEED, i, spec.batchSize, spec.seqLen));
  const student = await worker.loadModel({ path: models.student, task: "sequence-classification" });
  const outputDir = join(scratch, `run-${++runCounter}`);
  // one checkpoint, after the last step, as an epoch run writes
  const trainConfig = { outputDir, device: "cpu", seed: SEED, ckptSteps: data.length };
  try {
    const distiller =
      spec.workload === "kd"
        ? new BasicDistiller({
            trainConfig,
            distillConfig: { temperature: TEMPERATURE },
            teacher,
            student,
            adaptorT: logitsOnly,
            adaptorS: logitsOnly,
          })
        : new GeneralDistiller({
            trainConfig,
            distillConfig: {
              temperature: TEMPERATURE,
              intermediateMatches: [
                { layerT: 2, layerS: 1, feature: "hidden", loss: "hidden_mse", weight: 1 },
                { layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 },
                { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
              ],
            },
            teacher,
            student,
            adaptorT: withHidden,
            adaptorS: withHidden,
          });
    const started = Date.now();
    cpuStamps = [];
    const fed = feed(data);
    const length = Array.isArray(fed) ? { numEpochs: 1 } : { numSteps: data.length }; // a generator has no length
    await distiller.train({ optimizer: { type: "AdamW", lr: LR }, data: fed, ...length, progress: false });
    const runSeconds = (Date.now() - started) / 1000;
    const stamps = cpuStamps;
    cpuStamps = null;
    const lines = readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { step: number; time: number; total: number; workerIdleMs?: number });
    if (lines.length !== spec.warmup + spec.steps)
      throw new Error(`expected ${spec.warmup + spec.steps} metrics lines, got ${lines.length}`);
    if (stamps.length !== lines.length) throw new Error(`expected ${lines.length} train_step replies, saw ${stamps.length}`);
    const stepTimes: number[] = [];
    const cpuWorker: number[] = [];
    const cpuNode: number[] = [];
    const workerIdleMs: number[] = [];
    for (let k = Math.max(1, spec.warmup); k < lines.length; k++) {
      stepTimes.push(lines[k]!.time - lines[k - 1]!.time);
      workerIdleMs.push(lines[k]!.workerIdleMs ?? NaN);
      cpuWorker.push(stamps[k]!.worker - stamps[k - 1]!.worker);
      cpuNode.push(stamps[k]!.node - stamps[k - 1]!.node);
    }
    const cpuTimes = cpuWorker.map((c, i) => c + cpuNode[i]!);
    return {
      stepTimes,
      cpuTimes,
      cpuWorker,
      cpuNode,
      workerIdleMs,
      losses: lines.map((l) => l.total),
      runSeconds,
      checksum: checksum(data),
    };
  } finally {
    await student.dispose();
    rmSync(outputDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------

interface PlainStep {
  seconds: number;
  cpuSeconds: number;
  loss: number;
}

/**
 * BENCH_MODE steps: (a) and (b) alternate single steps in `host`. Before the distiller gets batch i (i ≥ 1), the
 * feed queues plain step i − 1 on the same worker, so the worker runs b0, a0, b1, a1, …; the interval between (b)'s
 * replies i − 1 and i holds a(i − 1) and b(i), and (b)'s step is that interval less a(i − 1)'s own time. What the
 * runPython request itself costs is left in (b)'s share.
 */
async function runInterleaved(
  host: Worker,
  teacher: ModelHandle,
  models: Models,
  spec: RunSpec,
  scratch: string,
): Promise<Record<Side, RunResult>> {
  const name = `plain-${++runCounter}`;
  const ref = (fn: string) => `${PLAIN_LOOP}:${fn}`;
  const started = Date.now();
  const cpu0 = processCpuSeconds(host.pid);
  const opened = (await host.runPython(ref("open_run"), { name, ...models, ...spec, seed: SEED, lr: LR, temperature: TEMPERATURE })) as {
    threads: number;
    torch: string;
    checksum: Checksum;
  };
  const plainSteps: Array<Promise<PlainStep>> = [];
  const feedPlain = (batches: Record<string, Tensor>[]) =>
    (async function* () {
      for (let i = 0; i < batches.length; i++) {
        if (i > 0) {
          const p = host.runPython(ref("step"), { name, index: i - 1 }) as Promise<PlainStep>;
          p.catch(() => undefined); // awaited below
          plainSteps.push(p);
        }
        yield batches[i]!;
      }
    })();
  let b: Omit<RunResult, "ownCpuSeconds">;
  try {
    b = await distil(host, teacher, models, spec, scratch, feedPlain);
  } finally {
    await Promise.allSettled(plainSteps);
    await host.runPython(ref("close_run"), { name });
  }
  const a = await Promise.all(plainSteps);
  const first = Math.max(1, spec.warmup);
  // distil() measured (b) as reply intervals from `first` on; each holds the plain step queued just before it
  const aMeasured = a.slice(first - 1);
  const ownCpuSeconds = processCpuSeconds(host.pid) - cpu0;
  const runSeconds = (Date.now() - started) / 1000;
  return {
    a: {
      stepTimes: aMeasured.map((x) => x.seconds),
      cpuTimes: aMeasured.map((x) => x.cpuSeconds),
      losses: a.map((x) => x.loss),
      runSeconds,
      ownCpuSeconds,
      threads: opened.threads,
      torch: opened.torch,
      checksum: opened.checksum,
    },
    b: {
      ...b,
      stepTimes: b.stepTimes.map((t, k) => t - aMeasured[k]!.seconds),
      cpuTimes: b.cpuTimes.map((c, k) => c - aMeasured[k]!.cpuSeconds),
      ...(b.cpuWorker ? { cpuWorker: b.cpuWorker.map((c, k) => c - aMeasured[k]!.cpuSeconds) } : {}),
      runSeconds,
      ownCpuSeconds: 0, // both sides' CPU is in (a)'s figure: one process
    },
  };
}

function sameBatches(a: Checksum | undefined, b: Checksum | undefined): void {
  if (!a || !b || a.ids !== b.ids || a.labels !== b.labels || a.first.join() !== b.first.join()) {
    throw new Error(`the two sides did not build the same batches: plain ${JSON.stringify(a)}, textbrewer-ts ${JSON.stringify(b)}`);
  }
}

const maxAbsDiff = (x: readonly number[], y: readonly number[]): number => Math.max(...x.map((v, i) => Math.abs(v - (y[i] ?? NaN))));

/** Busy CPU seconds of the whole machine since boot (/proc/stat, all cores). */
function machineBusySeconds(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) / 100;
}

const nodeCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** With BENCH_QUIET_WAIT=s, waits up to s seconds for other processes to use less than a quarter of a core. */
async function waitForQuiet(): Promise<void> {
  if (QUIET_WAIT <= 0) return;
  const until = Date.now() + QUIET_WAIT * 1000;
  let said = false;
  for (;;) {
    const m0 = machineBusySeconds();
    const n0 = nodeCpuSeconds();
    await new Promise((r) => setTimeout(r, 1000));
    const others = machineBusySeconds() - m0 - (nodeCpuSeconds() - n0);
    if (others < 0.25 || Date.now() >= until) {
      if (said) log(others < 0.25 ? "quiet again" : `still busy (${others.toFixed(2)} cores); going on`);
      return;
    }
    if (!said) log(`other processes use ${others.toFixed(2)} cores; waiting up to ${QUIET_WAIT} s for quiet…`);
    said = true;
    await new Promise((r) => setTimeout(r, 3000));
  }
}

const otherLoads: number[] = [];
/** Pairs measured again because other processes were busy during them (BENCH_QUIET_WAIT > 0 only). */
let retried = 0;

function logRun(label: string, side: Side, r: RunResult): void {
  log(
    `${label} ${side === "a" ? "(a) plain" : "(b) tb-ts"}: median ${ms(median(r.stepTimes))} ms/step, cpu ${ms(median(r.cpuTimes))} ms/step` +
      (r.cpuWorker && r.cpuNode ? ` (worker ${ms(median(r.cpuWorker))}, node ${ms(median(r.cpuNode))})` : "") +
      `, ${r.stepTimes.length} steps, run ${r.runSeconds.toFixed(1)} s, other load ${(r.foreignLoad ?? 0).toFixed(2)} cores`,
  );
}

/** Runs `work` and returns the cores' worth of CPU other processes used meanwhile. */
async function withForeignLoad<T>(work: () => Promise<T>, ownCpu: (result: T) => number): Promise<[T, number]> {
  await waitForQuiet();
  const m0 = machineBusySeconds();
  const n0 = nodeCpuSeconds();
  const w0 = Date.now();
  const result = await work();
  const others = machineBusySeconds() - m0 - ownCpu(result) - (nodeCpuSeconds() - n0);
  const load = Math.max(0, others) / Math.max(1e-3, (Date.now() - w0) / 1000);
  otherLoads.push(load);
  return [result, load];
}

/** One A/B pair: the sides one after the other in `order`, or (`together`) alternating steps in one run. */
async function pair(
  order: Side[],
  run: Record<Side, () => Promise<RunResult>> | { together: () => Promise<Record<Side, RunResult>> },
  label: string,
): Promise<Record<Side, RunResult>> {
  const out: Partial<Record<Side, RunResult>> = {};
  if ("together" in run) {
    const [both, load] = await withForeignLoad(run.together, (r) => r.a.ownCpuSeconds + r.b.ownCpuSeconds);
    for (const side of ["a", "b"] as const) {
      both[side].foreignLoad = load;
      out[side] = both[side];
      logRun(label, side, both[side]);
    }
  } else {
    for (const side of order) {
      const [r, load] = await withForeignLoad(run[side], (x) => x.ownCpuSeconds);
      r.foreignLoad = load;
      out[side] = r;
      logRun(label, side, r);
    }
  }
  sameBatches(out.a!.checksum, out.b!.checksum);
  return out as Record<Side, RunResult>;
}

function cpuModel(): string {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8")
      .split("\n")
      .find((l) => l.startsWith("model name"));
    return line ? line.split(":").slice(1).join(":").trim() : "unknown";
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  const loadStart = loadavg().map((x) => Number(x.toFixed(2)));
  const scratch = mkdtempSync(join(tmpdir(), "tbts-bench-"));
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      rmSync(scratch, { recursive: true, force: true }); // workers exit with us (their stdin lifeline closes)
      process.exit(130);
    });
  }
  let worker: Worker | null = null;
  try {
    log("building teacher and student (random BERT, HF folders)…");
    const models = await buildModels(scratch);
    log("starting the worker (cpu)…");
    worker = await startWorker();
    const w = worker;
    const shared = FRESH_WORKER
      ? null
      : { worker: w, teacher: await w.loadModel({ path: models.teacher, task: "sequence-classification" }) };
    const perPair = FRESH_WORKER ? "a fresh worker per pair" : "one worker for every pair";
    const processes =
      MODE === "steps"
        ? `both sides in ${perPair}, alternating single steps (a, b, a, b, …)`
        : MODE === "runs"
          ? `both sides in ${perPair}, one whole run after the other`
          : `(a) a fresh Python process per run, (b) ${FRESH_WORKER ? "a fresh worker per run" : "one worker for every run"}`;
    log(`worker: torch ${w.info.torch}, ${w.info.threads} threads, device ${w.info.device}; ${processes}`);
    if (FRESH_WORKER) await w.close();

    const threadsSeen = new Set<number>([w.info.threads]);
    const measure = async (spec: RunSpec, order: Side[], label: string): Promise<Record<Side, RunResult>> => {
      for (let attempt = 0; ; attempt++) {
        const host = SAME_PROCESS ? (shared?.worker ?? (await startWorker())) : null;
        const hosted =
          host && !shared
            ? { worker: host, teacher: await host.loadModel({ path: models.teacher, task: "sequence-classification" }) }
            : shared;
        let r: Record<Side, RunResult>;
        try {
          const runs =
            MODE === "steps"
              ? { together: () => runInterleaved(hosted!.worker, hosted!.teacher, models, spec, scratch) }
              : { a: () => runPlain(models, spec, host), b: () => runTextBrewer(hosted, models, spec, scratch) };
          r = await pair(order, runs, label);
        } finally {
          if (host && !shared) await host.close();
        }
        if (r.a.threads !== undefined) threadsSeen.add(r.a.threads);
        const busiest = Math.max(r.a.foreignLoad ?? 0, r.b.foreignLoad ?? 0);
        if (QUIET_WAIT <= 0 || busiest <= BUSY_LIMIT || attempt >= RETRIES) return r;
        retried++;
        log(`${label}: other processes used ${busiest.toFixed(2)} cores during the pair; measuring it again`);
      }
    };

    // main comparison: per workload, REPEATS interleaved pairs, alternating which side goes first
    const workloads: Record<string, unknown> = {};
    for (const workload of WORKLOADS) {
      const spec: RunSpec = { workload, ...MAIN, warmup: WARMUP, steps: STEPS };
      const repeats: Record<Side, RunResult>[] = [];
      for (let r = 0; r < REPEATS; r++) {
        repeats.push(
          await measure(spec, roundOrder<Side>(["a", "b"], r), `${workload} b${spec.batchSize} s${spec.seqLen} rep ${r + 1}/${REPEATS}`),
        );
      }
      const a = repeats.flatMap((x) => x.a.stepTimes);
      const b = repeats.flatMap((x) => x.b.stepTimes);
      const cpuA = repeats.flatMap((x) => x.a.cpuTimes);
      const cpuB = repeats.flatMap((x) => x.b.cpuTimes);
      const perRepeat = repeats.map((x) => median(x.b.stepTimes) / median(x.a.stepTimes));
      const lossDiff = Math.max(...repeats.map((x) => maxAbsDiff(x.a.losses, x.b.losses)));
      workloads[workload] = {
        batchSize: spec.batchSize,
        seqLen: spec.seqLen,
        stepsMeasured: { perRun: STEPS, warmup: WARMUP, repeats: REPEATS, totalPerSide: a.length },
        medianStepMs: { a: ms(median(a)), b: ms(median(b)) },
        p90StepMs: { a: ms(quantile(a, 0.9)), b: ms(quantile(b, 0.9)) },
        ratioBA: r4(median(b) / median(a)),
        ratioBAPerRepeat: perRepeat.map(r4),
        // BENCH_MODE steps: each (b) step against the (a) step run just before it, at the same moment of the machine
        ...(MODE === "steps"
          ? { ratioBAAdjacentStepsMedian: r4(median(repeats.flatMap((x) => x.b.stepTimes.map((t, k) => t / x.a.stepTimes[k]!)))) }
          : {}),
        ratioBASpread: { min: r4(Math.min(...perRepeat)), max: r4(Math.max(...perRepeat)) },
        ratioBABootstrap95: bootstrapRatioCI(repeats.map((x) => ({ a: x.a.stepTimes, b: x.b.stepTimes }))),
        // other load only ever slows a run down: the fastest run of each side is the least disturbed estimate
        ratioBABestRuns: r4(
          Math.min(...repeats.map((x) => median(x.b.stepTimes))) / Math.min(...repeats.map((x) => median(x.a.stepTimes))),
        ),
        // CPU time per step (a: the plain process; b: worker + Node), less sensitive to other load on the machine
        medianCpuMsPerStep: {
          a: ms(median(cpuA)),
          b: ms(median(cpuB)),
          bWorker: ms(median(repeats.flatMap((x) => x.b.cpuWorker ?? []))),
          bNode: ms(median(repeats.flatMap((x) => x.b.cpuNode ?? []))),
        },
        cpuRatioBA: r4(median(cpuB) / median(cpuA)),
        // (b): how long the worker waited for Node per step; ~0 means TypeScript never holds the worker up
        workerIdleMsPerStep: {
          median: r3(median(repeats.flatMap((x) => x.b.workerIdleMs ?? []))),
          max: r3(Math.max(...repeats.flatMap((x) => x.b.workerIdleMs ?? []))),
        },
        // cores' worth of CPU other processes used during each run: > 0.1 means the figures are disturbed
        otherLoad: { a: repeats.map((x) => r3(x.a.foreignLoad ?? 0)), b: repeats.map((x) => r3(x.b.foreignLoad ?? 0)) },
        runSeconds: { a: repeats.map((x) => r3(x.a.runSeconds)), b: repeats.map((x) => r3(x.b.runSeconds)) },
        // same batches, same seed, same dropout draws: the per-step losses of the two sides agree
        maxAbsLossDiff: Number(lossDiff.toExponential(2)),
      };
      log(
        `${workload}: a ${ms(median(a))} ms, b ${ms(median(b))} ms, b/a ${r4(median(b) / median(a))} [${r4(Math.min(...perRepeat))}, ${r4(Math.max(...perRepeat))}]`,
      );
    }

    // scaling: batch sweep at seq 128, seq sweep at batch 32; the shared point (32, 128) runs once
    let scaling: Record<string, unknown> | null = null;
    if (SCALING) {
      const points: Array<{ batchSize: number; seqLen: number }> = [
        ...BATCH_SWEEP.map((batchSize) => ({ batchSize, seqLen: SWEEP_REF.seqLen })),
        ...SEQ_SWEEP.filter((s) => s !== SWEEP_REF.seqLen).map((seqLen) => ({ batchSize: SWEEP_REF.batchSize, seqLen })),
      ];
      scaling = { stepsMeasured: { perRun: SCALING_STEPS, warmup: SCALING_WARMUP, repeats: SCALING_REPEATS } };
      let n = 0;
      for (const workload of SCALING_WORKLOADS) {
        const rows: Record<
          string,
          { a: number; b: number; ratioBA: number; ratioBAPerRepeat: number[]; cpuRatioBA: number; otherLoad: { a: number; b: number } }
        > = {};
        for (const p of points) {
          const spec: RunSpec = { workload, ...p, warmup: SCALING_WARMUP, steps: SCALING_STEPS };
          const reps: Record<Side, RunResult>[] = [];
          for (let k = 0; k < SCALING_REPEATS; k++) {
            reps.push(
              await measure(
                spec,
                roundOrder<Side>(["a", "b"], n++),
                `scaling ${workload} b${p.batchSize} s${p.seqLen} rep ${k + 1}/${SCALING_REPEATS}`,
              ),
            );
          }
          const a = median(reps.flatMap((r) => r.a.stepTimes));
          const b = median(reps.flatMap((r) => r.b.stepTimes));
          rows[`b${p.batchSize}_s${p.seqLen}`] = {
            a: ms(a),
            b: ms(b),
            ratioBA: r4(b / a),
            ratioBAPerRepeat: reps.map((r) => r4(median(r.b.stepTimes) / median(r.a.stepTimes))),
            cpuRatioBA: r4(median(reps.flatMap((r) => r.b.cpuTimes)) / median(reps.flatMap((r) => r.a.cpuTimes))),
            otherLoad: {
              a: r3(Math.max(...reps.map((r) => r.a.foreignLoad ?? 0))),
              b: r3(Math.max(...reps.map((r) => r.b.foreignLoad ?? 0))),
            },
          };
        }
        const ref = rows[`b${SWEEP_REF.batchSize}_s${SWEEP_REF.seqLen}`]!;
        const growth = (keys: string[]) =>
          Object.fromEntries(keys.map((k) => [k, { a: r3(rows[k]!.a / ref.a), b: r3(rows[k]!.b / ref.b) }]));
        scaling[workload] = {
          medianStepMs: rows,
          growthVsB32S128: {
            batch: growth(BATCH_SWEEP.map((bs) => `b${bs}_s${SWEEP_REF.seqLen}`)),
            seq: growth(SEQ_SWEEP.map((s) => `b${SWEEP_REF.batchSize}_s${s}`)),
          },
        };
      }
    }

    const result = {
      benchmark: "distill",
      environment: {
        date: new Date().toISOString(),
        node: process.version,
        torch: w.info.torch,
        transformers: w.info.transformers,
        python: w.info.python,
        torchThreads: [...threadsSeen].length === 1 ? w.info.threads : [...threadsSeen],
        torchThreadsNote: THREADS
          ? `BENCH_THREADS=${THREADS}: OMP_NUM_THREADS / MKL_NUM_THREADS set for both processes`
          : "torch's default in both processes (no set_num_threads on either side)",
        device: w.info.device,
        cpuModel: cpuModel(),
        cpus: cpus().length,
        loadAvgStart: loadStart,
        loadAvgEnd: loadavg().map((x) => Number(x.toFixed(2))),
        // cores' worth of CPU used by other processes during the runs (median, max over runs)
        otherLoad: { median: r3(median(otherLoads)), max: r3(Math.max(...otherLoads)), pairsMeasuredAgain: retried },
      },
      setup: {
        teacher: `BERT ${MODEL.teacherLayers} layers, hidden ${MODEL.hidden}, ${MODEL.heads} heads, intermediate ${MODEL.intermediate}, vocab ${MODEL.vocab}, ${MODEL.numLabels} labels, random init`,
        student: `BERT ${MODEL.studentLayers} layers, same width`,
        optimizer: `AdamW lr ${LR} (torch defaults otherwise)`,
        temperature: TEMPERATURE,
        a: "bench/plain_loop.py: perf_counter around forward + backward + optimizer step (+ loss.item())",
        b:
          "textbrewer-ts BasicDistiller (kd) / GeneralDistiller (hidden), default options (inFlight 2, preflight on): " +
          "interval between consecutive optimizer-step replies (metrics.jsonl time)",
        processes,
        order: MODE === "steps" ? "single steps alternating within each run" : "whole runs interleaved, alternating which side runs first",
      },
      workloads,
      scaling,
      wallSeconds: r3((Date.now() - t0) / 1000),
    };
    if (threadsSeen.size !== 1) log(`warning: torch thread counts differ between the sides: ${[...threadsSeen].join(", ")}`);
    emitResult("distill", result);
  } finally {
    await worker?.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`[bench] failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
