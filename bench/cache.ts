/**
 * `npm run bench:cache`: seconds per epoch of logits-only distillation with a live teacher and with the
 * teacher-output cache (epochs after the first), for a teacher three times the student's depth. Prints JSON.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { BasicDistiller, DistillCache, Tensor, Worker, seededRng } from "../src/index.js";
import { makeTinyBert } from "../test/helpers/fixtures.js";
import { emitResult } from "./emit.js";

const EXAMPLES = Number(process.env.BENCH_EXAMPLES ?? 512);
const BATCH = 32;
const SEQ = 64;
const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 3);

function batches(epoch: number): Array<Record<string, Tensor>> {
  const order = Array.from({ length: EXAMPLES }, (_, i) => i);
  seededRng(epoch + 1).shuffle(order);
  const out = [];
  for (let k = 0; k < EXAMPLES; k += BATCH) {
    const rows = order.slice(k, k + BATCH);
    out.push({
      input_ids: Tensor.from(rows.map((i) => Array.from({ length: SEQ }, (_, j) => BigInt(1 + ((i * 131 + j * 17) % 999)))), "int64"),
      attention_mask: Tensor.from(rows.map(() => Array.from({ length: SEQ }, () => 1n)), "int64"),
    });
  }
  return out;
}

function epochSeconds(outputDir: string, stepsPerEpoch: number): number[] {
  const times = readFileSync(join(outputDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { time: number }).time);
  const out: number[] = [];
  for (let e = 1; e * stepsPerEpoch < times.length; e++) out.push(times[(e + 1) * stepsPerEpoch - 1]! - times[e * stepsPerEpoch - 1]!);
  return out; // epochs 2.. (epoch 1 has no start mark)
}

const dir = mkdtempSync(join(tmpdir(), "tbts-bench-cache-"));
const spec = { hidden: 256, heads: 4, vocab: 1000, numLabels: 4, dropout: 0.1 };
await makeTinyBert(join(dir, "teacher"), { ...spec, layers: 6, seed: 1 });
await makeTinyBert(join(dir, "student"), { ...spec, layers: 2, seed: 2 });
const worker = await Worker.start({ device: "cpu" });
const adaptor = (_b: any, o: any) => ({ logits: o.logits });
const result: Record<string, unknown> = {};
for (const mode of ["live", "cached"] as const) {
  const teacher = await worker.loadModel({ path: join(dir, "teacher"), task: "sequence-classification" });
  const student = await worker.loadModel({ path: join(dir, "student"), task: "sequence-classification" });
  const outputDir = join(dir, mode);
  const cache = mode === "cached" ? await DistillCache.open({ teachers: teacher, adaptorT: adaptor }) : false;
  const t0 = Date.now();
  await new BasicDistiller({ trainConfig: { outputDir, device: "cpu", ckptEpochFrequency: 1000 }, teacher, student, adaptorT: adaptor, adaptorS: adaptor }).train({
    optimizer: { lr: 1e-4 },
    data: batches,
    numEpochs: EPOCHS,
    teacherCache: cache,
    progress: false,
  });
  const seconds = epochSeconds(outputDir, EXAMPLES / BATCH);
  result[mode] = { totalSeconds: (Date.now() - t0) / 1000, secondsPerEpochAfterFirst: seconds, counters: cache ? cache.stats : null };
  if (cache) await cache.close();
  await Promise.all([teacher.dispose(), student.dispose()]);
  process.stderr.write(`${mode}: ${JSON.stringify(result[mode])}\n`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const live = median((result.live as { secondsPerEpochAfterFirst: number[] }).secondsPerEpochAfterFirst);
const cached = median((result.cached as { secondsPerEpochAfterFirst: number[] }).secondsPerEpochAfterFirst);
emitResult("cache", {
      workload: { teacherLayers: 6, studentLayers: 2, hidden: 256, examples: EXAMPLES, batch: BATCH, seq: SEQ, epochs: EPOCHS },
      liveSecondsPerEpoch: live,
      cachedSecondsPerEpoch: cached,
      speedup: live / cached,
      runs: result,
      environment: { torch: worker.info.torch, threads: worker.info.threads, device: worker.info.device, cpu: cpus()[0]?.model, node: process.version, date: new Date().toISOString() },
    });
await worker.close();
rmSync(dir, { recursive: true, force: true });
