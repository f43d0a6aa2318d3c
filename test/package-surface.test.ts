/**
 * What an installed package exposes: the root is the core (60 names at most, types included), the extras live under
 * subpaths, the demo-only readers are in examples/ (not in the package), and nothing an entry point loads needs a
 * devDependency.
 */
import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  exports: Record<string, string | { types: string; import: string }>;
  files: string[];
};
const MAX_ROOT_NAMES = 60;
const DEMO_ONLY = ["loadSentiment", "splitSentiment", "SENTIMENT_CREDIT", "readWikiGold", "parseWikiGold", "WIKIGOLD_LABELS", "MINILM_L6"];

const entries = Object.entries(pkg.exports).filter((e): e is [string, { types: string; import: string }] => typeof e[1] !== "string");

let program: ts.Program | undefined;

/** Every name (values and types) a declaration file of an entry point exports, as TypeScript resolves it. */
function exportedNames(dts: string): string[] {
  // one program for every entry point: building it is most of this file's time
  program ??= ts.createProgram(
    entries.map(([, t]) => join(ROOT, t.types)),
    { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true },
  );
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(dts);
  const symbol = file && checker.getSymbolAtLocation(file);
  if (!symbol) throw new Error(`${dts}: not a module`);
  return checker.getExportsOfModule(symbol).map((s) => s.name);
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire(?:\.resolve)?\(\s*)["']([^"']+)["']/g;

/** The packages (not files, not node builtins) that a module and everything it imports, statically or not, load. */
function packagesLoadedBy(entry: string): Map<string, string> {
  const found = new Map<string, string>(); // package -> first module that loads it
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const code = readFileSync(file, "utf8").replace(/\/\/# sourceMappingURL=.*$/m, "");
    for (const [, spec] of code.matchAll(SPECIFIER)) {
      if (!spec) continue;
      if (spec.startsWith(".")) {
        queue.push(resolve(dirname(file), spec));
        continue;
      }
      if (spec.startsWith("node:") || builtinModules.includes(spec)) continue;
      const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
      if (!found.has(name)) found.set(name, file.slice(ROOT.length));
    }
  }
  return found;
}

describe("package surface", () => {
  it("exports the core at the root (at most 60 names) and the extras under subpaths, each with types", () => {
    expect(entries.map(([k]) => k).sort()).toEqual([
      ".",
      "./data",
      "./distributed",
      "./guidance",
      "./interop",
      "./llm",
      "./onnx",
      "./report",
      "./service",
    ]);
    for (const [, target] of entries) {
      expect(existsSync(join(ROOT, target.import)), target.import).toBe(true);
      expect(existsSync(join(ROOT, target.types)), target.types).toBe(true);
      expect(pkg.files.some((f) => target.import.startsWith(`./${f}/`))).toBe(true);
    }
    const root = exportedNames(join(ROOT, "dist/index.d.ts"));
    expect(root.length, `root exports ${root.length} names: ${root.sort().join(", ")}`).toBeLessThanOrEqual(MAX_ROOT_NAMES);
    for (const core of [
      "Worker",
      "Tensor",
      "GeneralDistiller",
      "DistillationConfig",
      "TrainingConfig",
      "presets",
      "DistillCache",
      "WorkerError",
    ]) {
      expect(root).toContain(core);
    }
    const data = exportedNames(join(ROOT, "dist/data/index.d.ts"));
    for (const helper of ["makeBatches", "readConll", "readLabelledText", "seededRng", "accuracy", "augment"])
      expect(data).toContain(helper);
    expect(exportedNames(join(ROOT, "dist/report/index.d.ts"))).toContain("buildReport");
    expect(exportedNames(join(ROOT, "dist/interop/index.d.ts"))).toContain("inspectCheckpoint");
    expect(exportedNames(join(ROOT, "dist/llm/index.d.ts"))).toContain("CausalLMDistiller");
  });

  it("no entry point exposes the demo-only readers", async () => {
    for (const [key, target] of entries) {
      const names = Object.keys(await import(join(ROOT, target.import)));
      const types = exportedNames(join(ROOT, target.types));
      for (const demo of DEMO_ONLY) {
        expect(names, `${key} exports ${demo}`).not.toContain(demo);
        expect(types, `${key} exports ${demo}`).not.toContain(demo);
      }
    }
  });

  it("no entry point loads a devDependency or an undeclared package", () => {
    for (const [key, target] of entries) {
      for (const [name, where] of packagesLoadedBy(join(ROOT, target.import))) {
        // an optional peer (./onnx's runtime) is the user's to install; it is also a devDependency for the tests
        if (pkg.peerDependencies[name] !== undefined) continue;
        expect(pkg.devDependencies[name], `${key} loads devDependency '${name}' (from ${where})`).toBeUndefined();
        expect(pkg.dependencies[name], `${key} loads '${name}' (from ${where}), which is not a dependency`).toBeDefined();
      }
    }
  });

  it("the import scan finds what a module loads (static, dynamic, require.resolve)", () => {
    // The scan is what the previous test relies on; check it on modules with each kind of load.
    expect([...packagesLoadedBy(join(ROOT, "dist/worker/worker.js")).keys()]).toEqual(expect.arrayContaining(["zeromq", "execa"]));
    expect([...packagesLoadedBy(join(ROOT, "dist/interop/pythonia.js")).keys()]).toContain("pythonia");
    const sample = 'import a from "alpha";\nconst b = await import("beta/x");\nrequire.resolve("gamma/package.json");\nimport "./none.js";';
    expect([...sample.matchAll(SPECIFIER)].map((m) => m[1])).toEqual(["alpha", "beta/x", "gamma/package.json", "./none.js"]);
  });
});
