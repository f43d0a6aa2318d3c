/**
 * `npm run bench:ddp`: training throughput of 1 rank against 2 ranks of a worker group (torchrun, gloo on the CPU,
 * one thread per rank), the same global batch split over the ranks. Prints JSON: samples/s of each, their ratio
 * and scaling efficiency (ratio / 2), with the range over the repeats.
 *
 * Knobs: BENCH_STEPS (24 optimizer steps, the first 4 not timed), BENCH_REPEATS (2 rounds, the order alternating so
 * drift of the machine cancels), BENCH_BATCH (32, the global batch).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { WorkerGroup } from "../src/distributed/index.js";
import { BasicTrainer, Tensor } from "../src/index.js";
import { makeTinyBert } from "../test/helpers/fixtures.js";
import { emitResult } from "./emit.js";

const STEPS = Number(process.env.BENCH_STEPS ?? 24);
const WARMUP = 4;
const REPEATS = Number(process.env.BENCH_REPEATS ?? 2);
const BATCH = Number(process.env.BENCH_BATCH ?? 32);
const SEQ = 64;

function batches(count: number): Array<Record<string, Tensor>> {
  return Array.from({ length: count }, (_, k) => ({
    input_ids: Tensor.from(
      Array.from({ length: BATCH }, (_, i) => Array.from({ length: SEQ }, (_, j) => BigInt(1 + ((k * 31 + i * 131 + j * 17) % 999)))),
      "int64",
    ),
    labels: Tensor.from(
      Array.from({ length: BATCH }, (_, i) => BigInt((k + i) % 4)),
      "int64",
    ),
  }));
}

async function samplesPerSecond(ranks: number, modelDir: string, outputDir: string): Promise<number> {
  await using group = await WorkerGroup.start({ device: "cpu", env: { OMP_NUM_THREADS: "1" }, distributed: { nprocPerNode: ranks } });
  const model = await group.loadModel({ path: modelDir, task: "sequence-classification" });
  await new BasicTrainer({
    trainConfig: { outputDir, device: "cpu", seed: 1, ckptSteps: STEPS },
    model,
    adaptor: (_b: any, o: any) => ({ losses: o.loss }),
  }).train({ optimizer: { lr: 1e-4 }, data: batches(8), numSteps: STEPS, progress: false, logLineEvery: 0 });
  const times = readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { time: number }).time);
  return ((times.length - WARMUP) * BATCH) / (times.at(-1)! - times[WARMUP - 1]!);
}

const dir = mkdtempSync(join(tmpdir(), "bench-ddp-"));
try {
  const modelDir = await makeTinyBert(join(dir, "model"), { layers: 4, hidden: 128, heads: 4, vocab: 1000, numLabels: 4 });
  const runs: Record<1 | 2, number[]> = { 1: [], 2: [] };
  for (let r = 0; r < REPEATS; r++) {
    for (const ranks of (r % 2 === 0 ? [1, 2] : [2, 1]) as Array<1 | 2>) {
      runs[ranks].push(await samplesPerSecond(ranks, modelDir, join(dir, `run-${r}-${ranks}`)));
    }
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ratios = runs[1].map((one, i) => runs[2][i]! / one);
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  emitResult("ddp", {
    what: "BasicTrainer samples/s, 1 rank vs 2 ranks (gloo, CPU, OMP_NUM_THREADS=1 per rank), same global batch",
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    globalBatch: BATCH,
    seq: SEQ,
    model: "BERT 4 layers, hidden 128",
    timedSteps: STEPS - WARMUP,
    repeats: REPEATS,
    oneRank: { samplesPerSecond: round(mean(runs[1])), runs: runs[1].map(round) },
    twoRanks: { samplesPerSecond: round(mean(runs[2])), runs: runs[2].map(round) },
    ratio: round(mean(ratios)),
    ratioInterval: [round(Math.min(...ratios)), round(Math.max(...ratios))],
    scalingEfficiency: round(mean(ratios) / 2),
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
