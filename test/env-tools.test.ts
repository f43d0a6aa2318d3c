import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { completeMarker, devRequirementsFile, toolsEnvDir, venvDir, venvPython } from "../src/env/paths.js";
import { setupToolsEnv } from "../src/env/python-env.js";
import { tempDir } from "./helpers/fixtures.js";

// The lock files here pin no package, so the builds run offline; what is tested is where the environment goes,
// when it is reused and how a half-built one is replaced.
describe("the development tools' environment", () => {
  const saved = process.env.TEXTBREWER_CACHE;
  let tmp: ReturnType<typeof tempDir>;
  let lockFile: string;
  const log: string[] = [];
  beforeEach(() => {
    tmp = tempDir();
    process.env.TEXTBREWER_CACHE = join(tmp.path, "cache");
    lockFile = join(tmp.path, "requirements-dev.lock");
    writeFileSync(lockFile, "# no tools\n");
    log.length = 0;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.TEXTBREWER_CACHE;
    else process.env.TEXTBREWER_CACHE = saved;
    tmp.cleanup();
  });

  it("is keyed by its own lock file, apart from the worker's environment", () => {
    const dir = toolsEnvDir(lockFile);
    expect(basename(dir)).toMatch(/^tools-[0-9a-f]{16}$/);
    expect(dir).not.toBe(venvDir());
    writeFileSync(lockFile, "# other tools\n");
    expect(toolsEnvDir(lockFile)).not.toBe(dir);
    expect(basename(toolsEnvDir())).toMatch(/^tools-[0-9a-f]{16}$/);
    expect(readFileSync(devRequirementsFile(), "utf8")).toMatch(/^ruff==\d+\.\d+\.\d+$/m);
  });

  it("builds on first use, marks it complete, then reuses it", async () => {
    const dir = await setupToolsEnv({ lockFile, log: (s) => log.push(s) });
    expect(dir).toBe(toolsEnvDir(lockFile));
    expect(existsSync(completeMarker(dir))).toBe(true);
    const r = await execa(venvPython(dir), ["-c", "import sys; print(sys.prefix)"]);
    expect(String(r.stdout).trim()).toBe(dir);
    expect(log.some((l) => l.includes(`creating ${dir}`))).toBe(true);
    expect(existsSync(venvDir())).toBe(false); // the worker's environment is not built for a tool

    const markedAt = statSync(completeMarker(dir)).mtimeMs;
    log.length = 0;
    expect(await setupToolsEnv({ lockFile, log: (s) => log.push(s) })).toBe(dir);
    expect(log).toEqual([]);
    expect(statSync(completeMarker(dir)).mtimeMs).toBe(markedAt);
  });

  it("replaces a half-built environment (no completion marker)", async () => {
    const dir = toolsEnvDir(lockFile);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "leftover"), "from an interrupted build");
    await setupToolsEnv({ lockFile, log: (s) => log.push(s) });
    expect(log[0]).toBe(`setup: removing the half-built environment ${dir}`);
    expect(existsSync(join(dir, "leftover"))).toBe(false);
    expect(existsSync(completeMarker(dir))).toBe(true);
  });
});
