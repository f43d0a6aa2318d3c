/** A worker group's faults: a rank killed mid-train, the Node process killed, a collective that never completes. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { WorkerGroup } from "../src/distributed/index.js";
import { BasicDistiller, Tensor, WorkerCrashedError, WorkerError } from "../src/index.js";
import { useRealWorker } from "./helpers/fixtures.js";
import { isRunning, waitUntilGone } from "./helpers/process.js";

const SLOW = Boolean(process.env.TEXTBREWER_SLOW_TESTS);

function batch(seed: number, n = 8): Record<string, Tensor> {
  const ids = Array.from({ length: n }, (_, i) => Array.from({ length: 6 }, (_, j) => BigInt(1 + ((seed * 17 + i * 7 + j * 13) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    labels: Tensor.from(
      ids.map((_, i) => BigInt((seed + i) % 3)),
      "int64",
    ),
  };
}
const logits = (_b: any, o: any) => ({ logits: o.logits });

describe("worker group faults (gloo, CPU)", () => {
  const suite = useRealWorker({ models: { student: { layers: 1, hidden: 32, seed: 2 } } });

  it("a rank killed with SIGKILL mid-train fails the run with WorkerCrashedError naming the rank within 2 s; no process is left", async () => {
    const group = await WorkerGroup.start({ device: "cpu", distributed: { nprocPerNode: 2 } });
    try {
      const teacher = await group.loadModel({ path: suite.models.student, task: "sequence-classification" });
      const student = await group.loadModel({ path: suite.models.student, task: "sequence-classification" });
      const outputDir = join(suite.tmp.path, "killed");
      const run = new BasicDistiller({
        trainConfig: { outputDir, device: "cpu" },
        teacher,
        student,
        adaptorT: logits,
        adaptorS: logits,
      }).train({
        optimizer: { lr: 1e-3 },
        data: [batch(1), batch(2)],
        numEpochs: 10_000,
        progress: false,
      });
      run.catch(() => undefined);
      const metricsFile = join(outputDir, "metrics.jsonl");
      while (!existsSync(metricsFile)) await new Promise((r) => setTimeout(r, 50));
      const victim = group.ranks[1]!;
      const killedAt = Date.now();
      process.kill(victim.pid, "SIGKILL");
      const error = await run.then(
        () => null,
        (e: unknown) => e,
      );
      const ms = Date.now() - killedAt;
      expect(error).toBeInstanceOf(WorkerCrashedError);
      const crash = error as WorkerCrashedError;
      expect(crash.rank).toBe(1);
      expect(crash.signal).toBe("SIGKILL");
      expect(crash.message).toMatch(/^rank 1 of the worker group was killed by SIGKILL/);
      expect(ms).toBeLessThan(2000);
      expect(group.alive).toBe(false);
      await expect(group.call("ping")).rejects.toBe(crash);
      for (const pid of [group.pid, ...group.ranks.map((r) => r.pid)]) await waitUntilGone(pid, 5000);
    } finally {
      await group.close();
    }
  });

  it.skipIf(!SLOW)("a rank that dies with a Python error is named with its exit code and traceback", async () => {
    const group = await WorkerGroup.start({ device: "cpu", distributed: { nprocPerNode: 2 } });
    try {
      const script = join(suite.tmp.path, "die.py");
      const { writeFileSync } = await import("node:fs");
      writeFileSync(
        script,
        "import os, sys, traceback\n\ndef die():\n    try:\n        raise RuntimeError('native library gave up')\n    except RuntimeError:\n        traceback.print_exc()\n        sys.stderr.flush()\n        os._exit(7)\n",
      );
      const error = await group
        .rank(1)
        .runPython(`${script}:die`)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkerCrashedError);
      const crash = error as WorkerCrashedError;
      expect(crash.rank).toBe(1);
      expect(crash.exitCode).toBe(7);
      expect(crash.traceback).toMatch(/RuntimeError: native library gave up/);
      for (const pid of group.ranks.map((r) => r.pid)) await waitUntilGone(pid, 5000);
    } finally {
      await group.close();
    }
  });

  it.skipIf(!SLOW)("a collective that one rank never joins fails with torch's timeout, naming the rank", async () => {
    const group = await WorkerGroup.start({ device: "cpu", distributed: { nprocPerNode: 2, collectiveTimeoutMs: 2000 } });
    try {
      const started = Date.now();
      const error = await group
        .rank(0)
        .runPython("test/helpers/collective.py:all_reduce")
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkerError);
      expect((error as WorkerError).rank).toBe(0);
      expect((error as WorkerError).message).toMatch(/call_python \(rank 0\).*[Tt]imed out/s);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      await group.close();
    }
  });

  it("every rank and torchrun exit within 10 s when the Node process is killed with SIGKILL", async () => {
    const child = execa("node", ["--import", "tsx", "test/helpers/hold-group.ts"], { reject: false, buffer: false });
    const pids = await new Promise<number[]>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => resolve(JSON.parse(String(d).trim()) as number[]));
      child.catch(reject);
    });
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(isRunning(pid)).toBe(true);
    child.kill("SIGKILL");
    for (const pid of pids) expect(await waitUntilGone(pid, 10_000)).toBeLessThan(10_000);
  });
});
