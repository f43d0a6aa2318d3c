/**
 * `npm run bench:teacher`: step time of logits distillation with the teacher in the student's worker (in-process)
 * against the teacher in a TeacherService, with steps in flight, for a teacher of 6 layers and a student of 2, each
 * worker on one thread. The modes alternate in short interleaved rounds (bench/rounds.ts) and the ratio of median
 * step times gets a bootstrap interval over the rounds. Also: the workers' idle time per step, and the throughput of
 * one service feeding two students at once. Prints JSON.
 *
 * Knobs: BENCH_ROUNDS (6), BENCH_STEPS (steps per run, 14; the first 4 are warm-up), BENCH_BATCH (16), BENCH_SEQ (64).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { BasicDistiller, type ModelHandle, type Tensor, Worker } from "../src/index.js";
import { isServedTeachers, type ServedTeachers, TeacherService } from "../src/service/index.js";
import { makeTinyBert } from "../test/helpers/fixtures.js";
import { emitResult } from "./emit.js";
import { bootstrapRatioCI, median, r3, roundOrder } from "./rounds.js";
import { syntheticBatches } from "./synthetic-batches.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const STEPS = Number(process.env.BENCH_STEPS ?? 14);
const WARMUP = 4;
const BATCH = Number(process.env.BENCH_BATCH ?? 16);
const SEQ = Number(process.env.BENCH_SEQ ?? 64);
const ONE_THREAD = { OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" };

type Mode = "inProcess" | "service";

const batches = (): Array<Record<string, Tensor>> => syntheticBatches(STEPS, BATCH, SEQ);

interface RunTimes {
  /** Seconds per step after the warm-up. */
  steps: number[];
  /** The student worker's idle milliseconds per step (waiting for its next request). */
  idleMs: number[];
  seconds: number;
}

function readRun(outputDir: string, seconds: number): RunTimes {
  const lines = readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { time: number; workerIdleMs?: number });
  const steps = lines.slice(WARMUP).map((l, i) => l.time - lines[WARMUP - 1 + i]!.time);
  return { steps, idleMs: lines.slice(WARMUP).map((l) => l.workerIdleMs ?? 0), seconds };
}

const dir = mkdtempSync(join(tmpdir(), "tbts-bench-teacher-"));
const spec = { hidden: 256, heads: 4, vocab: 1000, numLabels: 4, dropout: 0.1 };
const teacherDir = await makeTinyBert(join(dir, "teacher"), { ...spec, layers: 6, seed: 1 });
const studentDir = await makeTinyBert(join(dir, "student"), { ...spec, layers: 2, seed: 2 });
const adaptor = (_b: any, o: any) => ({ logits: o.logits });
const data = batches();
const workers = [await Worker.start({ device: "cpu", env: ONE_THREAD }), await Worker.start({ device: "cpu", env: ONE_THREAD })];
const localTeacher = await workers[0]!.loadModel({ path: teacherDir, task: "sequence-classification" });
const service = await TeacherService.start({
  model: { path: teacherDir, task: "sequence-classification" },
  adaptorT: adaptor,
  device: "cpu",
  env: ONE_THREAD,
});
let runNo = 0;

async function distil(worker: Worker, teacher: ModelHandle | ServedTeachers): Promise<RunTimes> {
  const outputDir = join(dir, `run-${runNo++}`);
  const student = await worker.loadModel({ path: studentDir, task: "sequence-classification" });
  const t0 = performance.now();
  try {
    await new BasicDistiller({
      trainConfig: { outputDir, device: "cpu", seed: 1, ckptSteps: 10_000 },
      distillConfig: { temperature: 4 },
      student,
      ...(isServedTeachers(teacher) ? { teacher } : { teacher, adaptorT: adaptor }),
      adaptorS: adaptor,
    }).train({ optimizer: { lr: 1e-4 }, data, numSteps: STEPS, progress: false, logLineEvery: 0, preflight: false });
  } finally {
    await student.dispose();
  }
  return readRun(outputDir, (performance.now() - t0) / 1000);
}

try {
  const pairs: Array<{ a: number[]; b: number[] }> = [];
  const idle: Record<Mode, number[]> = { inProcess: [], service: [] };
  const serviceIdleShare: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const got: Partial<Record<Mode, RunTimes>> = {};
    for (const mode of roundOrder<Mode>(["inProcess", "service"], round)) {
      const before = await service.stats();
      got[mode] = await distil(workers[0]!, mode === "inProcess" ? localTeacher : service);
      if (mode === "service") {
        const after = await service.stats();
        const busy = after.busyMs - before.busyMs;
        serviceIdleShare.push(1 - busy / (got[mode].seconds * 1000));
      }
      idle[mode].push(...got[mode].idleMs);
    }
    pairs.push({ a: got.inProcess!.steps, b: got.service!.steps });
    process.stderr.write(
      `round ${round + 1}/${ROUNDS}: in-process ${r3(median(got.inProcess!.steps))} s/step, service ${r3(median(got.service!.steps))} s/step\n`,
    );
  }
  const a = pairs.flatMap((p) => p.a);
  const b = pairs.flatMap((p) => p.b);

  // one service feeding two students at once, against one student alone on it (same interleaving)
  const shared: Array<{ a: number[]; b: number[] }> = [];
  const throughput = { one: [] as number[], two: [] as number[] };
  for (let round = 0; round < Math.max(2, Math.floor(ROUNDS / 2)); round++) {
    for (const mode of roundOrder(["one", "two"] as const, round)) {
      const t0 = performance.now();
      const runs = mode === "one" ? [distil(workers[0]!, service)] : workers.map((w) => distil(w, service));
      await Promise.all(runs);
      const seconds = (performance.now() - t0) / 1000;
      throughput[mode].push((runs.length * STEPS * BATCH) / seconds);
    }
    shared.push({ a: [throughput.one.at(-1)!], b: [throughput.two.at(-1)!] });
  }
  const stats = await service.stats();
  emitResult("teacher", {
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "?" },
    setup: {
      teacherLayers: 6,
      studentLayers: 2,
      hidden: 256,
      batch: BATCH,
      seq: SEQ,
      threadsPerWorker: 1,
      rounds: ROUNDS,
      stepsPerRun: STEPS,
      warmup: WARMUP,
    },
    stepSeconds: { inProcess: r3(median(a)), service: r3(median(b)) },
    ratioServiceToInProcess: { median: r3(median(b) / median(a)), ci95: bootstrapRatioCI(pairs) },
    studentWorkerIdleMsPerStep: { inProcess: r3(median(idle.inProcess)), service: r3(median(idle.service)) },
    serviceIdleShare: r3(median(serviceIdleShare)),
    twoStudentsOneService: {
      examplesPerSecondOne: r3(median(throughput.one)),
      examplesPerSecondTwo: r3(median(throughput.two)),
      ratioTwoToOne: { median: r3(median(throughput.two) / median(throughput.one)), ci95: bootstrapRatioCI(shared) },
      forwardsShared: stats.requests - stats.forwards,
    },
  });
} finally {
  await service.close();
  await Promise.all(workers.map((w) => w.close()));
  rmSync(dir, { recursive: true, force: true });
}
