/**
 * `npm run bench:cache`: seconds per epoch of logits-only distillation with a live teacher and with the
 * teacher-output cache (epochs after the first), for a teacher three times the student's depth, next to the
 * student trained alone (BasicTrainer on the same batches): the floor a cached epoch can reach. Prints JSON.
 *
 * Knobs: BENCH_EXAMPLES (512), BENCH_EPOCHS (5: four measured), BENCH_REPEATS (2 rounds of the three modes, the
 * order alternating between rounds, so drift of the machine cancels).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { seededRng } from "../src/data/index.js";
import { BasicDistiller, BasicTrainer, DistillCache, Tensor, Worker } from "../src/index.js";
import { makeTinyBert } from "../test/helpers/fixtures.js";
import { emitResult } from "./emit.js";

const EXAMPLES = Number(process.env.BENCH_EXAMPLES ?? 512);
const BATCH = 32;
const SEQ = 64;
const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 5);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 2);
const STEPS_PER_EPOCH = EXAMPLES / BATCH;

type Mode = "live" | "cached" | "student";
const MODES: Mode[] = ["live", "cached", "student"];

function batches(epoch: number): Array<Record<string, Tensor>> {
  const order = Array.from({ length: EXAMPLES }, (_, i) => i);
  seededRng(epoch + 1).shuffle(order);
  const out = [];
  for (let k = 0; k < EXAMPLES; k += BATCH) {
    const rows = order.slice(k, k + BATCH);
    out.push({
      input_ids: Tensor.from(
        rows.map((i) => Array.from({ length: SEQ }, (_, j) => BigInt(1 + ((i * 131 + j * 17) % 999)))),
        "int64",
      ),
      attention_mask: Tensor.from(
        rows.map(() => Array.from({ length: SEQ }, () => 1n)),
        "int64",
      ),
      labels: Tensor.from(
        rows.map((i) => BigInt(i % 4)),
        "int64",
      ),
    });
  }
  return out;
}

function metricLines(outputDir: string): Array<{ time: number; workerIdleMs?: number }> {
  return readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** Seconds of epochs 2.. (epoch 1 has no start mark, and it fills the cache). */
function epochSeconds(outputDir: string): number[] {
  const times = metricLines(outputDir).map((l) => l.time);
  const out: number[] = [];
  for (let e = 1; e * STEPS_PER_EPOCH < times.length; e++)
    out.push(times[(e + 1) * STEPS_PER_EPOCH - 1]! - times[e * STEPS_PER_EPOCH - 1]!);
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const r3 = (x: number) => Number(x.toFixed(3));

const dir = mkdtempSync(join(tmpdir(), "tbts-bench-cache-"));
const spec = { hidden: 256, heads: 4, vocab: 1000, numLabels: 4, dropout: 0.1 };
await makeTinyBert(join(dir, "teacher"), { ...spec, layers: 6, seed: 1 });
await makeTinyBert(join(dir, "student"), { ...spec, layers: 2, seed: 2 });
const worker = await Worker.start({ device: "cpu" });
const adaptor = (_b: any, o: any) => ({ logits: o.logits });
const runs: Record<Mode, Array<Record<string, unknown>>> = { live: [], cached: [], student: [] };
const epochs: Record<Mode, number[]> = { live: [], cached: [], student: [] };
let n = 0;

async function run(mode: Mode): Promise<void> {
  const teacher = await worker.loadModel({ path: join(dir, "teacher"), task: "sequence-classification" });
  const student = await worker.loadModel({ path: join(dir, "student"), task: "sequence-classification" });
  const outputDir = join(dir, `${mode}-${++n}`);
  const trainConfig = { outputDir, device: "cpu", ckptEpochFrequency: 1000 };
  const options = { optimizer: { lr: 1e-4 }, data: batches, numEpochs: EPOCHS, progress: false };
  const cache = mode === "cached" ? await DistillCache.open({ teachers: teacher, adaptorT: adaptor }) : false;
  const t0 = Date.now();
  if (mode === "student") {
    await new BasicTrainer({ trainConfig, model: student, adaptor: (_b: any, o: any) => ({ losses: o.loss }) }).train(options);
  } else {
    await new BasicDistiller({ trainConfig, teacher, student, adaptorT: adaptor, adaptorS: adaptor }).train({
      ...options,
      teacherCache: cache,
    });
  }
  const seconds = epochSeconds(outputDir);
  // how long the worker waited for this process per step, epochs after the first: ~0 unless lookups hold it up
  const idle = metricLines(outputDir)
    .slice(STEPS_PER_EPOCH)
    .map((l) => l.workerIdleMs ?? 0);
  const record = {
    totalSeconds: (Date.now() - t0) / 1000,
    secondsPerEpochAfterFirst: seconds.map(r3),
    workerIdleMsPerStep: { median: r3(median(idle)), max: r3(Math.max(...idle)) },
    ...(cache ? { counters: cache.stats } : {}),
  };
  runs[mode].push(record);
  epochs[mode].push(...seconds);
  if (cache) await cache.close();
  await Promise.all([teacher.dispose(), student.dispose()]);
  process.stderr.write(`${mode}: ${JSON.stringify(record)}\n`);
}

for (let r = 0; r < REPEATS; r++) for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) await run(mode);

const live = median(epochs.live);
const cached = median(epochs.cached);
const alone = median(epochs.student);
emitResult("cache", {
  workload: {
    teacherLayers: 6,
    studentLayers: 2,
    hidden: 256,
    examples: EXAMPLES,
    batch: BATCH,
    seq: SEQ,
    epochs: EPOCHS,
    repeats: REPEATS,
  },
  liveSecondsPerEpoch: r3(live),
  cachedSecondsPerEpoch: r3(cached),
  studentAloneSecondsPerEpoch: r3(alone),
  speedup: r3(live / cached),
  // the most the cache can give on this workload: a cached epoch cannot beat training the student alone
  ceiling: r3(live / alone),
  cachedOverStudentAlone: r3(cached / alone),
  runs,
  environment: {
    torch: worker.info.torch,
    threads: worker.info.threads,
    device: worker.info.device,
    cpu: cpus()[0]?.model,
    node: process.version,
    date: new Date().toISOString(),
  },
});
await worker.close();
rmSync(dir, { recursive: true, force: true });
