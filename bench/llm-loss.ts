/**
 * `npm run bench:llm-loss`: peak extra memory and time of a token-level KD loss's forward + backward over logits
 * of 4 × 512 positions × a 32k vocabulary, unchunked (plain autograd over every row at once) against chunked
 * (`token_kd_loss`: chunks of rows, recomputed in the backward). One fresh Python process per measurement. Memory:
 * the peak resident memory above the inputs (both logits and the student's .grad), with glibc mapping every large
 * allocation on its own so that freed tensors leave the resident set; time: a second process with the worker's
 * allocator settings. Prints JSON.
 *
 * Knobs: BENCH_ROWS (2048), BENCH_VOCAB (32000), BENCH_KINDS ("kl,jsd"), BENCH_CHUNKS ("default,256").
 */
import { join } from "node:path";
import { execa } from "execa";
import { pythonEnv, resolvePython } from "../src/env/python-env.js";
import { emitResult } from "./emit.js";

const ROWS = Number(process.env.BENCH_ROWS ?? 2048);
const VOCAB = Number(process.env.BENCH_VOCAB ?? 32000);
const KINDS = (process.env.BENCH_KINDS ?? "kl,jsd").split(",");
const CHUNKS = (process.env.BENCH_CHUNKS ?? "default,256").split(",").map((c) => (c === "default" ? null : Number(c)));
const MEMORY_TUNABLES = "glibc.malloc.mmap_threshold=1048576";

interface Measured {
  loss: number;
  inputBytes: number;
  gradientBytes: number;
  peakExtraBytes: number;
  seconds: number;
}

async function measure(job: Record<string, unknown>, tunables?: string): Promise<Measured> {
  const { python } = resolvePython();
  const env = pythonEnv({ OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1", ...(tunables ? { GLIBC_TUNABLES: tunables } : {}) });
  const r = await execa(python, [join("bench", "llm_loss_memory.py"), JSON.stringify(job)], { env });
  return JSON.parse(String(r.stdout)) as Measured;
}

const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
const results = [];
const variants = [{ variant: "unchunked", chunk: null }, ...CHUNKS.map((chunk) => ({ variant: "chunked", chunk }))];
for (const kind of KINDS) {
  for (const v of variants) {
    process.stderr.write(`${kind} ${v.variant} chunk=${v.chunk ?? "default"}\n`);
    const job = { ...v, kind, rows: ROWS, vocab: VOCAB };
    const memory = await measure(job, MEMORY_TUNABLES);
    const timing = await measure(job);
    results.push({
      kind,
      variant: v.variant,
      chunkRows: v.chunk ?? "default",
      peakExtraMiB: mib(memory.peakExtraBytes),
      gradientMiB: mib(memory.gradientBytes),
      inputMiB: mib(memory.inputBytes),
      seconds: timing.seconds,
      loss: timing.loss,
    });
  }
}
emitResult("llm-loss", { rows: ROWS, vocab: VOCAB, threads: 1, results });
