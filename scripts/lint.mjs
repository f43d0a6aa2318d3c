// Lint and format checks over the whole tree: Biome (TypeScript and JavaScript), ruff (every Python file, with
// python_worker/pyproject.toml's settings) and pyright (the worker package, against the worker's interpreter so
// that torch and transformers types resolve), and import cycles under src/ (type-only ones included). Runs every
// check, then fails if any failed.
// `--fix` applies the formatters and the safe automatic fixes first, then checks what is left;
// `--format` only applies the two formatters.

import { join } from "node:path";
import { execa } from "execa";
import { packageRoot, venvScript } from "../dist/env/paths.js";
import { PythonEnvError, resolvePython, setupPythonEnv, setupToolsEnv } from "../dist/env/python-env.js";

const fix = process.argv.includes("--fix");
const formatOnly = process.argv.includes("--format");
const root = packageRoot();
const ruffConfig = join(root, "python_worker", "pyproject.toml");
const log = (line) => console.error(line);

const ruff = venvScript(await setupToolsEnv({ log }), "ruff");
const formatters = [
  ["biome format", ["biome", "format", "--write", "."]],
  ["ruff format", [ruff, "format", "--config", ruffConfig, "."]],
];
if (formatOnly) process.exit((await runAll(formatters)).length ? 1 : 0);

let python;
try {
  python = resolvePython().python;
} catch (e) {
  if (!(e instanceof PythonEnvError)) throw e;
  log("lint: pyright needs the worker's Python environment to resolve torch and transformers; building it");
  python = (await setupPythonEnv({ log })).python;
}

const fixes = [
  ["biome check --write", ["biome", "check", "--write", "."]],
  ["ruff check --fix", [ruff, "check", "--fix", "--config", ruffConfig, "."]],
  ["ruff format", [ruff, "format", "--config", ruffConfig, "."]],
];
const checks = [
  ["biome", ["biome", "check", "."]],
  ["ruff format", [ruff, "format", "--check", "--config", ruffConfig, "."]],
  ["ruff check", [ruff, "check", "--config", ruffConfig, "."]],
  ["pyright", ["pyright", "-p", "python_worker", "--pythonpath", python]],
  ["import cycles", [process.execPath, "scripts/import-cycles.mjs"]],
];

const failed = await runAll([...(fix ? fixes : []), ...checks]);
if (failed.length) {
  log(`lint: failed: ${failed.join(", ")}. \`npm run lint:fix\` applies the formatters and the safe fixes.`);
  process.exit(1);
}

/** Runs each step in turn, says how each went and how long it took; returns the names of those that failed. */
async function runAll(steps) {
  const failed = [];
  for (const [name, [command, ...args]] of steps) {
    const t0 = performance.now();
    const r = await execa(command, args, { cwd: root, preferLocal: true, stdio: "inherit", reject: false });
    log(`lint: ${name} ${r.exitCode === 0 ? "ok" : "FAILED"} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    if (r.exitCode !== 0) failed.push(name);
  }
  return failed;
}
