import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { toolsEnvDir, venvDir } from "../src/env/paths.js";
import { pruneEnvironments } from "../src/env/prune.js";
import { tempDir } from "./helpers/fixtures.js";

describe("pruning old managed environments", () => {
  const saved = process.env.TEXTBREWER_CACHE;
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
    process.env.TEXTBREWER_CACHE = tmp.path;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.TEXTBREWER_CACHE;
    else process.env.TEXTBREWER_CACHE = saved;
    tmp.cleanup();
  });

  function env(name: string): string {
    const dir = join(tmp.path, name);
    mkdirSync(join(dir, "bin"), { recursive: true });
    writeFileSync(join(dir, ".textbrewer-complete"), "{}");
    return dir;
  }

  it("removes other versions' environments, keeps this version's, one being built and unrelated files", async () => {
    const current = env(basename(venvDir()));
    const old = env("venv-0123456789abcdef");
    const halfBuilt = join(tmp.path, "venv-fedcba9876543210");
    mkdirSync(halfBuilt);
    const building = env("venv-00000000000000aa");
    mkdirSync(`${building}.lock`);
    writeFileSync(join(`${building}.lock`, "pid"), String(process.pid)); // a live owner
    const abandoned = env("venv-00000000000000bb");
    const child = execa("true");
    await child;
    mkdirSync(`${abandoned}.lock`);
    writeFileSync(join(`${abandoned}.lock`, "pid"), String(child.pid)); // its owner has exited
    const other = join(tmp.path, "notes.txt");
    writeFileSync(other, "mine");

    expect(pruneEnvironments({ dryRun: true }).removed).toHaveLength(3);
    expect(existsSync(old)).toBe(true);

    const result = pruneEnvironments();
    expect(result.removed.sort()).toEqual([abandoned, old, halfBuilt].sort());
    expect(result.skipped).toEqual([building]);
    for (const dir of [old, halfBuilt, abandoned, `${abandoned}.lock`]) expect(existsSync(dir)).toBe(false);
    for (const path of [current, building, `${building}.lock`, other]) expect(existsSync(path)).toBe(true);
  });

  it("removes other versions' tools environments and keeps the current one", () => {
    const worker = env(basename(venvDir()));
    const tools = env(basename(toolsEnvDir()));
    const oldTools = env("tools-0123456789abcdef");
    const building = env("tools-00000000000000aa");
    mkdirSync(`${building}.lock`);
    writeFileSync(join(`${building}.lock`, "pid"), String(process.pid)); // a live owner
    const result = pruneEnvironments();
    expect(result).toEqual({ removed: [oldTools], skipped: [building] });
    expect(existsSync(oldTools)).toBe(false);
    for (const path of [worker, tools, building]) expect(existsSync(path)).toBe(true);
  });

  it("does nothing when the cache folder does not exist", () => {
    process.env.TEXTBREWER_CACHE = join(tmp.path, "missing");
    expect(pruneEnvironments()).toEqual({ removed: [], skipped: [] });
  });
});
