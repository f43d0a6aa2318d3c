import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WORKER_MALLOC_TUNABLES } from "../src/env/python-env.js";
import { type DType, Tensor, Worker, WorkerCrashedError, WorkerError } from "../src/index.js";
import { tempDir, useTempDir } from "./helpers/fixtures.js";
import { isRunning, waitUntilGone } from "./helpers/process.js";

const DTYPES: DType[] = ["float32", "float16", "bfloat16", "float64", "int64", "int32", "int8", "uint8", "bool"];

function randomTensor(dtype: DType, shape: number[]): Tensor {
  const t = Tensor.zeros(shape, dtype);
  const bytes = t.bytes();
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761 + 12345) >>> 24;
  if (dtype === "bool") for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i]! & 1;
  return t;
}

function sameBytes(a: Tensor, b: Tensor): boolean {
  return (
    a.dtype === b.dtype && JSON.stringify(a.shape) === JSON.stringify(b.shape) && Buffer.from(a.bytes()).equals(Buffer.from(b.bytes()))
  );
}

describe("Worker bridge", () => {
  let worker: Worker;
  const tmp = useTempDir();

  beforeAll(async () => {
    worker = await Worker.start({ device: "cpu" });
  });
  afterAll(async () => {
    await worker?.close();
  });

  it("reports its environment", () => {
    expect(worker.info.torch).toMatch(/^\d+\.\d+/);
    expect(worker.info.device).toBe("cpu");
    expect(worker.endpoint).toMatch(/^ipc:\/\//);
  });

  it.each(DTYPES)("round-trips %s bit-exactly, including 0-d and empty tensors", async (dtype) => {
    const cases = [randomTensor(dtype, [3, 5]), randomTensor(dtype, []), randomTensor(dtype, [0, 4]), randomTensor(dtype, [2, 3, 70])];
    const back = (await worker.call("echo", { xs: cases })) as { xs: Tensor[] };
    cases.forEach((t, i) => {
      expect(sameBytes(back.xs[i]!, t)).toBe(true);
    });
  });

  it.each(DTYPES)("returns non-contiguous %s tensors correctly", async (dtype) => {
    const t = randomTensor(dtype, [4, 6]);
    const back = (await worker.call("echo", { x: t, transpose: true })) as { x: Tensor };
    expect(back.x.shape).toEqual([6, 4]);
    const size = t.bytes().length / t.size;
    const src = t.bytes();
    const got = back.x.bytes();
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 6; j++)
        expect(
          Buffer.from(got.subarray((j * 4 + i) * size, (j * 4 + i + 1) * size)).equals(
            Buffer.from(src.subarray((i * 6 + j) * size, (i * 6 + j + 1) * size)),
          ),
        ).toBe(true);
  });

  it("answers a failing request with WorkerError and keeps serving", async () => {
    const err = await worker.callUnchecked("no_such_op").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).pythonType).toBe("ProtocolError");
    expect((err as WorkerError).message).toMatch(/unknown op 'no_such_op'/);
    expect((err as WorkerError).traceback).toMatch(/Traceback/);
    await expect(worker.call("ping")).resolves.toBeUndefined();
  });

  it("runPython calls a function of the user's file with tensors and JSON both ways", async () => {
    const file = join(tmp.path, "user_fns.py");
    writeFileSync(
      file,
      [
        "import torch",
        "",
        "def scale(x, factor, note):",
        "    return {'y': x * factor, 'sum': float(x.sum()), 'note': note.upper()}",
        "",
      ].join("\n"),
    );
    const out = (await worker.runPython(`${file}:scale`, { x: Tensor.from([1, 2, 3], "float32"), factor: 2, note: "ok" })) as {
      y: Tensor;
      sum: number;
      note: string;
    };
    expect(Array.from(out.y.data as Float32Array)).toEqual([2, 4, 6]);
    expect(out.sum).toBe(6);
    expect(out.note).toBe("OK");
    const missing = await worker.runPython(`${file}:nope`).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/runPython: '.*user_fns\.py' has no function 'nope'; callables there: scale/);
    const raised = await worker.runPython(`${file}:scale`, { x: Tensor.from([1], "float32") }).catch((e: unknown) => e);
    expect((raised as WorkerError).pythonType).toBe("TypeError");
    expect((raised as WorkerError).traceback).toMatch(/missing 2 required positional arguments/);
    // a module function by name: the worker runs with the malloc settings that keep its heap (or the user's own)
    expect(await worker.runPython("os:getenv", { key: "GLIBC_TUNABLES" })).toBe(process.env.GLIBC_TUNABLES ?? WORKER_MALLOC_TUNABLES);
  });

  it("keeps several requests in flight and answers each exactly once, in order", async () => {
    const xs = Array.from({ length: 50 }, (_, i) => Tensor.from([i]));
    const replies = (await Promise.all(xs.map((x) => worker.call("echo", { x })))) as { x: Tensor }[];
    expect(replies.map((r) => r.x.toArray())).toEqual(xs.map((x) => x.toArray()));
  });

  it("keeps heartbeating while busy in a long call", async () => {
    const factory = join(tmp.path, "slow.py");
    writeFileSync(factory, "import time, torch\ndef make(seconds):\n    time.sleep(seconds)\n    return torch.nn.Linear(2, 2)\n");
    const ages: number[] = [];
    const timer = setInterval(() => ages.push(worker.heartbeatAgeMs), 200);
    const model = await worker.loadModel({ factory: `${factory}:make`, factoryArgs: { seconds: 3 } });
    clearInterval(timer);
    expect(model.className).toBe("Linear");
    expect(ages.length).toBeGreaterThan(10);
    expect(Math.max(...ages)).toBeLessThan(3000);
  });
});

describe("Worker lifecycle", () => {
  it("works over tcp on 127.0.0.1", async () => {
    await using worker = await Worker.start({ device: "cpu", endpoint: "tcp" });
    expect(worker.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const back = (await worker.call("echo", { x: Tensor.from([1, 2, 3]) })) as { x: Tensor };
    expect(back.x.toArray()).toEqual([1, 2, 3]);
  });

  it("close() ends the process and later calls fail clearly", async () => {
    const worker = await Worker.start({ device: "cpu" });
    const pid = worker.pid;
    await worker.close();
    expect(isRunning(pid)).toBe(false);
    await expect(worker.call("ping")).rejects.toThrow(/closed/);
    await worker.close(); // idempotent
  });

  it("rejects pending calls with WorkerCrashedError within 2 s when the worker is killed", async () => {
    const worker = await Worker.start({ device: "cpu" });
    const tmp = tempDir();
    const factory = join(tmp.path, "sleepy.py");
    writeFileSync(factory, "import time\ndef make():\n    time.sleep(60)\n");
    const pending = worker.loadModel({ factory: `${factory}:make` }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    process.kill(worker.pid, "SIGKILL");
    const err = await pending;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(err).toBeInstanceOf(WorkerCrashedError);
    expect((err as WorkerCrashedError).signal).toBe("SIGKILL");
    await expect(worker.call("ping")).rejects.toBeInstanceOf(WorkerCrashedError);
    await worker.close();
    tmp.cleanup();
  });

  it("reports the exit code, traceback and last stderr lines of a worker that dies", async () => {
    const worker = await Worker.start({ device: "cpu" });
    const tmp = tempDir();
    const factory = join(tmp.path, "dies.py");
    writeFileSync(
      factory,
      "import os, sys, traceback\ndef make():\n    try:\n        raise RuntimeError('native library gave up')\n    except RuntimeError:\n        traceback.print_exc()\n    sys.stderr.write('about to exit\\n'); sys.stderr.flush()\n    os._exit(7)\n",
    );
    const err = (await worker.loadModel({ factory: `${factory}:make` }).catch((e: unknown) => e)) as WorkerCrashedError;
    expect(err).toBeInstanceOf(WorkerCrashedError);
    expect(err.exitCode).toBe(7);
    expect(err.traceback).toMatch(/RuntimeError: native library gave up/);
    expect(err.stderrTail.join("\n")).toMatch(/about to exit/);
    await worker.close();
    tmp.cleanup();
  });

  it("exits by itself within 10 s when its Node parent is killed with SIGKILL", async () => {
    const child = execa("node", ["--import", "tsx", "test/helpers/hold-worker.ts"], { reject: false, buffer: false });
    const pid = await new Promise<number>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => resolve(Number(String(d).trim())));
      child.catch(reject);
    });
    expect(isRunning(pid)).toBe(true);
    child.kill("SIGKILL");
    const ms = await waitUntilGone(pid, 10_000);
    expect(ms).toBeLessThan(10_000);
  });
});

describe("Worker start errors", () => {
  it("a device the machine lacks fails the start with the worker's message", async () => {
    const err = await Worker.start({ device: "cuda:7", startupTimeoutMs: 60_000 }).catch((e: unknown) => e);
    expect((err as Error).name).toBe("WorkerStartError");
    expect((err as Error).message).toMatch(/device: 'cuda:7'/);
  });

  it("a missing interpreter fails the start clearly", async () => {
    await expect(Worker.start({ python: "/nonexistent/python3" })).rejects.toThrow(/exited during startup|ENOENT|nonexistent/);
  });
});
