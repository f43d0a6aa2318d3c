/**
 * A full disk for tests: a small tmpfs mounted on a fresh folder (needs root and mount(8)). Where mounting is not
 * possible, `limitFileWrites` stands in: it makes FileHandle writes fail with ENOSPC once a byte budget is spent.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";

export interface SmallDisk {
  path: string;
  /** Unmounts the tmpfs and removes the folder. */
  release: () => void;
}

/** A tmpfs of `bytes` (rounded up to pages) mounted on `<parent>/<name>`, or null when it cannot be mounted. */
export function mountSmallDisk(parent: string, name: string, bytes: number): SmallDisk | null {
  const path = join(parent, name);
  mkdirSync(path, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes},mode=0700`, "tmpfs", path], { stdio: "pipe", timeout: 10_000 });
  } catch {
    rmSync(path, { recursive: true, force: true });
    return null;
  }
  return {
    path,
    release: () => {
      execFileSync("umount", [path], { stdio: "pipe", timeout: 10_000 });
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Whether a tmpfs can be mounted here (root with mount(8)): probes once with a throwaway folder. */
export function canMountSmallDisk(parent: string): boolean {
  const disk = mountSmallDisk(parent, `.probe-${process.pid}`, 4096);
  disk?.release();
  return disk !== null;
}

/**
 * Fallback for a real full disk: FileHandle.write and writev fail with ENOSPC once `bytes` have been written through
 * them (by any handle of this process) until the returned function restores them.
 */
export async function limitFileWrites(scratch: string, bytes: number): Promise<() => void> {
  const probe = await open(join(scratch, ".probe"), "w");
  const proto = Object.getPrototypeOf(probe) as Record<"write" | "writev", (...args: unknown[]) => Promise<unknown>>;
  await probe.close();
  rmSync(join(scratch, ".probe"), { force: true });
  const original = { write: proto.write, writev: proto.writev };
  let left = bytes;
  const enospc = (): Error =>
    Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" });
  const size = (x: unknown): number => (ArrayBuffer.isView(x) ? x.byteLength : typeof x === "string" ? Buffer.byteLength(x) : 0);
  proto.write = async function (this: unknown, ...args: unknown[]) {
    const n = typeof args[2] === "number" ? args[2] : size(args[0]);
    if (n > left) throw enospc();
    left -= n;
    return original.write.apply(this, args);
  };
  proto.writev = async function (this: unknown, ...args: unknown[]) {
    const n = (args[0] as unknown[]).reduce((s: number, b) => s + size(b), 0);
    if (n > left) throw enospc();
    left -= n;
    return original.writev.apply(this, args);
  };
  return () => Object.assign(proto, original);
}
