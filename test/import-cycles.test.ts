import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tempDir } from "./helpers/fixtures.js";

const script = fileURLToPath(new URL("../scripts/import-cycles.mjs", import.meta.url));

describe("scripts/import-cycles.mjs", () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
    mkdirSync(join(tmp.path, "train"));
    mkdirSync(join(tmp.path, "cache"));
    mkdirSync(join(tmp.path, "util"));
    writeFileSync(join(tmp.path, "util", "index.ts"), "export const one = 1;\n");
    writeFileSync(join(tmp.path, "index.ts"), 'export * from "./train/loop.js";\nimport { one } from "./util/index.js";\nvoid one;\n');
  });
  afterEach(() => tmp.cleanup());

  const run = (...args: string[]) => execa("node", [script, tmp.path, ...args], { reject: false });

  it("passes when no module imports itself through others", async () => {
    writeFileSync(join(tmp.path, "train", "loop.ts"), 'import { one } from "../util/index.js";\nexport const loop = one;\n');
    const r = await run();
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^import cycles: none among 3 modules/);
  });

  it("fails on a cycle, names its modules, and leaves type-only cycles out with --runtime", async () => {
    writeFileSync(
      join(tmp.path, "train", "loop.ts"),
      'import { store } from "../cache/store.js";\nexport interface Hooks { x: number }\nexport const loop = store;\n',
    );
    writeFileSync(
      join(tmp.path, "cache", "store.ts"),
      'import type { Hooks } from "../train/loop.js";\nexport const store = (h: Hooks) => h.x;\n',
    );
    const all = await run();
    expect(all.exitCode).toBe(1);
    expect(all.stdout).toContain("1 group(s)");
    expect(all.stdout).toContain("2 modules: cache/store.ts, train/loop.ts");
    expect(all.stdout).toContain("e.g. cache/store.ts -> train/loop.ts -> cache/store.ts");
    const runtime = await run("--runtime");
    expect(runtime.exitCode).toBe(0);
    expect(runtime.stdout).toContain("none among 4 modules");
  });

  it("finds no cycle among the modules under src/, type-only imports included", async () => {
    const r = await execa("node", [script], { reject: false });
    expect(r.stdout).toMatch(/^import cycles: none among \d+ modules under src\//);
    expect(r.exitCode).toBe(0);
  });
});
