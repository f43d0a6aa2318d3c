/**
 * IPC benchmark: the cost of one request to the Python worker, pipelined request throughput, and the
 * TS → worker → TS bandwidth of float32 tensors, next to a same-machine memcpy figure.
 *
 *   npm run bench:ipc            (one JSON object on stdout, progress on stderr)
 *
 * Environment knobs: BENCH_PINGS (sequential pings, default 5000), BENCH_PIPELINED (pings in the pipelined run,
 * default 20000), BENCH_WINDOW (requests in flight, default 64), BENCH_SPIN_US (the worker's spinMicros).
 */
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { PerformanceObserver } from "node:perf_hooks";
import { Tensor, Worker } from "../src/index.js";
import { emitResult } from "./emit.js";

const PINGS = intEnv("BENCH_PINGS", 5000);
const PIPELINED = intEnv("BENCH_PIPELINED", 20000);
const WINDOW = intEnv("BENCH_WINDOW", 64);
/** The worker's spinMicros (busy-poll before blocking); unset: the Worker default. */
const SPIN_US = process.env.BENCH_SPIN_US === undefined ? undefined : intEnv("BENCH_SPIN_US", 0, 0);
const MiB = 1024 * 1024;

function intEnv(name: string, fallback: number, min = 1): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer ≥ ${min}, got '${v}'`);
  return n;
}

function log(msg: string): void {
  process.stderr.write(`[bench:ipc] ${msg}\n`);
}

/** q-quantile (0..1) of a sample, nearest-rank. */
function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i]!;
}
const median = (xs: readonly number[]): number => quantile(xs, 0.5);
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

function nowNs(): bigint {
  return process.hrtime.bigint();
}
const elapsedUs = (t0: bigint): number => Number(nowNs() - t0) / 1e3;

/** Busy CPU seconds of the whole machine since boot (/proc/stat, all cores). */
function machineBusySeconds(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** CPU seconds (user + system, all threads) of a process, from /proc/PID/stat (clock ticks of 1/100 s). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const nodeCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

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

async function pingLatency(worker: Worker): Promise<Record<string, number>> {
  for (let i = 0; i < 500; i++) await worker.call("ping"); // warm-up (JIT, socket buffers, Python caches)
  const us: number[] = new Array(PINGS);
  for (let i = 0; i < PINGS; i++) {
    const t0 = nowNs();
    await worker.call("ping");
    us[i] = elapsedUs(t0);
  }
  return {
    n: PINGS,
    medianUs: round(median(us)),
    p90Us: round(quantile(us, 0.9)),
    p99Us: round(quantile(us, 0.99)),
    meanUs: round(mean(us)),
    minUs: round(Math.min(...us)),
  };
}

async function pingThroughput(worker: Worker): Promise<Record<string, number>> {
  const lanes = async (total: number): Promise<void> => {
    let issued = 0;
    const lane = async (): Promise<void> => {
      while (issued < total) {
        issued++;
        await worker.call("ping");
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, total) }, lane));
  };
  await lanes(2000); // warm-up
  const t0 = nowNs();
  await lanes(PIPELINED);
  const seconds = elapsedUs(t0) / 1e6;
  return {
    n: PIPELINED,
    inFlight: WINDOW,
    seconds: round(seconds, 3),
    requestsPerSecond: Math.round(PIPELINED / seconds),
    usPerRequest: round((seconds * 1e6) / PIPELINED, 2),
  };
}

/** Node GC pauses (count, total ms) while `fn` runs: received frames are external memory that V8 collects. */
async function withGcTime<T>(fn: () => Promise<T>): Promise<T & { gcPauses: number; gcMs: number }> {
  let pauses = 0;
  let total = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      pauses++;
      total += e.duration;
    }
  });
  obs.observe({ entryTypes: ["gc"] });
  try {
    const r = await fn();
    await new Promise((res) => setImmediate(res)); // let the observer flush
    return { ...r, gcPauses: pauses, gcMs: round(total, 1) };
  } finally {
    obs.disconnect();
  }
}

async function echoBandwidth(worker: Worker, bytes: number, reps: number): Promise<Record<string, number>> {
  const n = bytes / 4;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (i % 1000) * 0.5;
  const x = Tensor.fromTypedArray(data, [n], "float32");
  const check = (reply: unknown): void => {
    const y = (reply as { x: Tensor }).x;
    if (!(y instanceof Tensor) || y.size !== n || y.data[n - 1] !== data[n - 1] || y.data[12345 % n] !== data[12345 % n]) {
      throw new Error(`echo of ${bytes} bytes came back wrong`);
    }
  };
  for (let i = 0; i < 3; i++) check(await worker.call("echo", { x })); // warm-up
  const us: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = nowNs();
    const reply = await worker.call("echo", { x });
    us.push(elapsedUs(t0));
    check(reply);
  }
  const rtt = median(us);
  return {
    bytes,
    reps,
    medianRttMs: round(rtt / 1e3, 3),
    minRttMs: round(Math.min(...us) / 1e3, 3),
    maxRttMs: round(Math.max(...us) / 1e3, 3),
    // both directions move `bytes`: MB/s = 2 × bytes / RTT (MB = 1e6 bytes)
    MBps: Math.round((2 * bytes) / (rtt / 1e6) / 1e6),
    MBpsBest: Math.round((2 * bytes) / (Math.min(...us) / 1e6) / 1e6),
  };
}

/** One copy of `bytes` in this process: into a preallocated Float32Array, and into a freshly allocated one. */
function memcpy(bytes: number, reps: number): Record<string, number> {
  const n = bytes / 4;
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = i;
  const dst = new Float32Array(n);
  const pre: number[] = [];
  const fresh: number[] = [];
  let sink = 0;
  for (let i = 0; i < reps + 3; i++) {
    let t0 = nowNs();
    dst.set(src);
    const a = elapsedUs(t0);
    t0 = nowNs();
    const f = new Float32Array(n);
    f.set(src);
    const b = elapsedUs(t0);
    sink += dst[n - 1]! + f[n - 1]!;
    if (i >= 3) {
      pre.push(a);
      fresh.push(b);
    }
  }
  if (sink < 0) log("unreachable");
  const mbps = (us: number): number => Math.round(bytes / (us / 1e6) / 1e6);
  return {
    bytes,
    reps,
    preallocatedMedianMs: round(median(pre) / 1e3, 3),
    preallocatedMBps: mbps(median(pre)),
    freshMedianMs: round(median(fresh) / 1e3, 3),
    freshMBps: mbps(median(fresh)),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadAvgStart = loadavg().map((x) => round(x, 2));
  log("starting the worker (cpu)…");
  const worker = await Worker.start({ device: "cpu", ...(SPIN_US === undefined ? {} : { spinMicros: SPIN_US }) });
  try {
    log(`worker up: torch ${worker.info.torch}, ${worker.info.threads} threads`);
    const busy0 = machineBusySeconds();
    const own0 = nodeCpuSeconds() + processCpuSeconds(worker.pid);
    const wall0 = Date.now();
    log(`ping latency: ${PINGS} sequential pings…`);
    const latency = await pingLatency(worker);
    log(`  median ${latency.medianUs} µs, p99 ${latency.p99Us} µs`);
    log(`ping throughput: ${PIPELINED} pings, ${WINDOW} in flight…`);
    const throughput = await pingThroughput(worker);
    log(`  ${throughput.requestsPerSecond} requests/s`);
    log("echo 1 MiB float32 ×40…");
    const echo1 = await withGcTime(() => echoBandwidth(worker, 1 * MiB, 40));
    log(`  median RTT ${echo1.medianRttMs} ms, ${echo1.MBps} MB/s`);
    log("echo 16 MiB float32 ×20…");
    const echo16 = await withGcTime(() => echoBandwidth(worker, 16 * MiB, 20));
    log(`  median RTT ${echo16.medianRttMs} ms, ${echo16.MBps} MB/s (Node GC: ${echo16.gcPauses} pauses, ${echo16.gcMs} ms)`);
    // cores' worth of CPU that other processes used while the worker was measured: above ~0.1 the figures are disturbed
    const otherLoad = round(
      Math.max(0, machineBusySeconds() - busy0 - (nodeCpuSeconds() + processCpuSeconds(worker.pid) - own0)) / ((Date.now() - wall0) / 1000),
      3,
    );
    const copy1 = memcpy(1 * MiB, 200);
    const copy16 = memcpy(16 * MiB, 20);
    const result = {
      benchmark: "ipc",
      environment: {
        date: new Date().toISOString(),
        node: process.version,
        torch: worker.info.torch,
        pyzmq: worker.info.pyzmq,
        libzmq: worker.info.libzmq,
        python: worker.info.python,
        torchThreads: worker.info.threads,
        workerSpinUs: SPIN_US ?? 0,
        device: worker.info.device,
        endpoint: worker.endpoint.startsWith("ipc://") ? "ipc" : worker.endpoint.startsWith("tcp://") ? "tcp" : "other",
        cpuModel: cpuModel(),
        cpus: cpus().length,
        loadAvgStart,
        loadAvgEnd: loadavg().map((x) => round(x, 2)),
        otherLoad,
      },
      pingLatency: latency,
      pingThroughput: throughput,
      echoFloat32: { "1MiB": echo1, "16MiB": echo16 },
      memcpyFloat32: { "1MiB": copy1, "16MiB": copy16 },
      targets: {
        pingMedianUs: { target: "<= 150", value: latency.medianUs, met: latency.medianUs! <= 150 },
        echo16MiB: { target: ">= 1000 MB/s", value: echo16.MBps, met: echo16.MBps! >= 1000 },
      },
      wallSeconds: round((Date.now() - started) / 1000, 1),
    };
    emitResult("ipc", result);
  } finally {
    await worker.close();
  }
}

main().catch((e) => {
  process.stderr.write(`[bench:ipc] failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
