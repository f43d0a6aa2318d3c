/** Checkpoint writes that fail (a full disk) name the folder and the cause, leave no temporary folder and keep `latest`. */

import { cpSync, existsSync, mkdirSync, readdirSync, readlinkSync, renameSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BasicTrainer, CheckpointWriteError, type LoopOptions, Tensor, Worker } from "../src/index.js";
import { makeTinyBert, tempDir } from "./helpers/fixtures.js";

function makeBatch(seed: number): Record<string, Tensor> {
  const ids = Array.from({ length: 2 }, (_, i) => Array.from({ length: 6 }, (_, j) => BigInt(1 + ((seed * 31 + i * 7 + j * 13) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1n)),
      "int64",
    ),
    labels: Tensor.from([BigInt(seed % 3), 1n], "int64"),
  };
}

const data = [makeBatch(1), makeBatch(2), makeBatch(3)];
const temporary = (dir: string): string[] => readdirSync(dir).filter((n) => n.includes(".tmp-"));
const folderBytes = (dir: string): number => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

/** Writes to the named checkpoint file go to /dev/full, which fails every write with ENOSPC. */
const INJECT_ENOSPC = `
import builtins
import textbrewer_worker.training.checkpoint as checkpoint


def fill_disk_at(name: str) -> None:
    def full_disk_open(path, mode="r", *args, **kwargs):
        if str(path).endswith(name) and "w" in mode:
            return builtins.open("/dev/full", mode, *args, **kwargs)
        return builtins.open(path, mode, *args, **kwargs)

    checkpoint.open = full_disk_open


def restore() -> None:
    checkpoint.__dict__.pop("open", None)
`;

describe("checkpoint writes on a full disk (real worker)", () => {
  let tmp: ReturnType<typeof tempDir>;
  let worker: Worker;
  let studentDir: string;
  let mounted: string | null = null;

  beforeAll(async () => {
    tmp = tempDir();
    studentDir = await makeTinyBert(join(tmp.path, "student"), { layers: 2, seed: 3 });
    worker = await Worker.start({ device: "cpu" });
  });
  afterAll(async () => {
    await worker?.close();
    if (mounted) await execa("umount", [mounted]).catch(() => undefined);
    tmp?.cleanup();
  });

  async function train(outputDir: string, options: Partial<LoopOptions>): Promise<unknown> {
    const model = await worker.loadModel({ path: studentDir, task: "sequence-classification" });
    try {
      return await new BasicTrainer({
        trainConfig: { outputDir, device: "cpu", seed: 1, ckptSteps: 1 },
        model,
        adaptor: (_b: any, o: any) => ({ losses: o.loss }),
      })
        .train({ optimizer: { lr: 1e-3 }, data, numSteps: 3, progress: false, ...options })
        .catch((e: unknown) => e);
    } finally {
      await model.dispose();
    }
  }

  it("a real full disk (a small tmpfs): CheckpointWriteError names gs2 and 'no space left on device'; latest still resumes", async (ctx) => {
    const probe = join(tmp.path, "probe");
    await train(probe, { numSteps: 1 });
    const checkpointBytes = folderBytes(join(probe, "gs1"));
    const disk = join(tmp.path, "disk");
    mkdirSync(disk);
    // room for one checkpoint and a half: gs1 fits, gs2 runs out of space
    const size = Math.ceil((checkpointBytes * 1.5) / 4096) * 4096;
    const mount = await execa("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", disk], { reject: false });
    if (mount.exitCode !== 0)
      ctx.skip(`cannot mount a tmpfs here (${mount.stderr.trim()}); the ENOSPC injection test covers the write path`);
    mounted = disk;
    const err = await train(disk, {});
    expect(err).toBeInstanceOf(CheckpointWriteError);
    expect((err as CheckpointWriteError).folder).toBe(join(disk, "gs2"));
    expect((err as CheckpointWriteError).message).toMatch(/could not write checkpoint .*gs2: no space left on device/);
    expect(temporary(disk)).toEqual([]);
    expect(readlinkSync(join(disk, "latest"))).toBe("gs1");
    expect(existsSync(join(disk, "gs2"))).toBe(false);
    await execa("mount", ["-o", `remount,size=${size * 4}`, disk]);
    expect(await train(disk, { resumeFrom: "latest" })).toMatchObject({ globalStep: 3 });
    expect(readlinkSync(join(disk, "latest"))).toBe("gs3");
  });

  it("ENOSPC injected at the optimizer.pt write: the same error, no temporary folder, latest intact and resumable", async () => {
    const inject = join(tmp.path, "inject_enospc.py");
    writeFileSync(inject, INJECT_ENOSPC);
    const outputDir = join(tmp.path, "injected");
    let err: unknown;
    const callback = async ({ step }: { step: number }): Promise<void> => {
      if (step === 1) await worker.runPython(`${inject}:fill_disk_at`, { name: "optimizer.pt" });
    };
    try {
      err = await train(outputDir, { callback });
    } finally {
      await worker.runPython(`${inject}:restore`);
    }
    expect(err).toBeInstanceOf(CheckpointWriteError);
    expect((err as CheckpointWriteError).message).toMatch(/gs2: no space left on device/);
    expect(String(((err as CheckpointWriteError).cause as Error).message)).toMatch(/optimizer\.pt/);
    expect(temporary(outputDir)).toEqual([]);
    expect(readlinkSync(join(outputDir, "latest"))).toBe("gs1");
    expect(await train(outputDir, { resumeFrom: "latest" })).toMatchObject({ globalStep: 3 });
  });

  it("removes the temporary checkpoint folders of dead runs when a run starts, and keeps a live process's", async () => {
    const outputDir = join(tmp.path, "stale");
    mkdirSync(outputDir);
    const dead = 2147483646; // above any pid_max
    mkdirSync(join(outputDir, `.gs4.tmp-${dead}-1700000000000`));
    writeFileSync(join(outputDir, `.gs4.tmp-${dead}-1700000000000`, "optimizer.pt"), "half written");
    symlinkSync("gs4", join(outputDir, `.latest.tmp-${dead}`));
    const live = `.gs9.tmp-${process.ppid}-1700000000000`;
    mkdirSync(join(outputDir, live));
    expect(await train(outputDir, { numSteps: 1 })).toMatchObject({ globalStep: 1 });
    expect(temporary(outputDir)).toEqual([live]);
  });

  it("moves back a gs{N} a killed run had moved aside, and resumes from it; a damaged trainer_state.json is named", async () => {
    const outputDir = join(tmp.path, "moved-aside");
    mkdirSync(outputDir);
    expect(await train(outputDir, { numSteps: 2 })).toMatchObject({ globalStep: 2 });
    const dead = 2147483646;
    // Killed between its two renames: gs2 moved aside, the new gs2 not in place yet, `latest` naming gs2.
    renameSync(join(outputDir, "gs2"), join(outputDir, `gs2.old-${dead}`));
    // Killed after both renames: the old copy of gs1 is left beside the new one.
    cpSync(join(outputDir, "gs1"), join(outputDir, `gs1.old-${dead}`), { recursive: true });
    expect(await train(outputDir, { numSteps: 2, resumeFrom: "latest" })).toMatchObject({ globalStep: 2 });
    expect(
      readdirSync(outputDir)
        .filter((n) => n.startsWith("gs"))
        .sort(),
    ).toEqual(["gs1", "gs2"]);

    writeFileSync(join(outputDir, "gs2", "trainer_state.json"), '{"globalStep": 2, "mo');
    const damaged = await train(outputDir, { numSteps: 2, resumeFrom: "latest" });
    expect(damaged).toBeInstanceOf(Error);
    expect((damaged as Error).message).toMatch(/gs2\/trainer_state\.json' is not valid JSON .*resume from another gs\{step\} checkpoint/);
  });
});
