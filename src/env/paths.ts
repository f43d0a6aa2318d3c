import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (the folder with package.json), from src/ or dist/ alike. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("textbrewer-ts: cannot find the package root");
    dir = parent;
  }
  return dir;
}

export function workerSourceDir(): string {
  return join(packageRoot(), "python_worker");
}

export function requirementsFile(): string {
  return join(workerSourceDir(), "requirements.lock");
}

/** Pinned development tools (`npm run lint`): installed into an environment of their own, never the worker's. */
export function devRequirementsFile(): string {
  return join(workerSourceDir(), "requirements-dev.lock");
}

/**
 * First 16 hex digits of sha256 over requirements.lock: the key of the cached environment. The extras' locks are not
 * part of it: an extra is added to the environment, with a marker of its own lock's hash (see extras.ts).
 */
export function requirementsHash(): string {
  return createHash("sha256").update(readFileSync(requirementsFile())).digest("hex").slice(0, 16);
}

export function cacheRoot(): string {
  if (process.env.TEXTBREWER_CACHE) return resolve(process.env.TEXTBREWER_CACHE);
  const base = process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), ".cache");
  return join(base, "textbrewer-ts");
}

export function venvDir(): string {
  return join(cacheRoot(), `venv-${requirementsHash()}`);
}

/** The development tools' environment, keyed like the worker's by the first 16 hex digits of its lock's sha256. */
export function toolsEnvDir(lockFile = devRequirementsFile()): string {
  const hash = createHash("sha256").update(readFileSync(lockFile)).digest("hex").slice(0, 16);
  return join(cacheRoot(), `tools-${hash}`);
}

export function venvPython(dir = venvDir()): string {
  return process.platform === "win32" ? join(dir, "Scripts", "python.exe") : join(dir, "bin", "python");
}

/** A console script that a package installed into the environment `dir` (e.g. `ruff`). */
export function venvScript(dir: string, name: string): string {
  return process.platform === "win32" ? join(dir, "Scripts", `${name}.exe`) : join(dir, "bin", name);
}

/** Written last by setup: an environment without it is half-built and never used. */
export function completeMarker(dir = venvDir()): string {
  return join(dir, ".textbrewer-complete");
}
