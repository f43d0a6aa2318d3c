/**
 * Extras of the managed Python environment: packages that serve one feature or the tests, kept out of the base
 * environment (python_worker/requirements.lock holds what training needs) and added to it on first use, or ahead of
 * time with `textbrewer setup --with emd,demo`. Each has a lock file python_worker/extras/<name>.lock; a marker in the
 * environment records the hash of the lock it was installed from, so a changed lock installs again.
 * With TEXTBREWER_PYTHON nothing is installed: the interpreter is the user's, and the worker's error names the pins.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { suggestName } from "../config/errors.js";
import { completeMarker, venvDir, venvPython, workerSourceDir } from "./paths.js";

export const EXTRAS = {
  test: { purpose: "the worker's test suite (pytest)", noDeps: false },
  emd: { purpose: "the EMD losses (POT)", noDeps: false },
  demo: { purpose: "the demo's pretrained model (all-MiniLM-L6-v2, used for its files)", noDeps: true },
  onnx: { purpose: "ONNX export and its check (onnx, onnxruntime)", noDeps: false },
} as const satisfies Record<string, { purpose: string; noDeps: boolean }>;

export type Extra = keyof typeof EXTRAS;
export const EXTRA_NAMES = Object.keys(EXTRAS) as Extra[];

export function extraLockFile(name: Extra): string {
  return join(workerSourceDir(), "extras", `${name}.lock`);
}

function lockHash(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 16);
}

function extraMarker(dir: string, name: Extra): string {
  return join(dir, `.textbrewer-extra-${name}`);
}

/** Whether the extra is installed (from its current lock) in the managed environment `dir`. */
export function hasExtra(name: Extra, dir = venvDir()): boolean {
  const marker = extraMarker(dir, name);
  return existsSync(marker) && readFileSync(marker, "utf8").trim() === lockHash(extraLockFile(name));
}

/** Checks names given by a user (`--with emd,demo`); throws one line naming the value and the allowed names. */
export function parseExtras(list: string): Extra[] {
  const names = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!(name in EXTRAS)) {
      const near = suggestName(name, EXTRA_NAMES);
      throw new Error(
        `--with: '${name}' is not an extra; use one or more of ${EXTRA_NAMES.join(", ")}${near ? ` (did you mean '${near}'?)` : ""}`,
      );
    }
  }
  return names as Extra[];
}

export interface ExtrasOptions {
  log?: (line: string) => void;
}

/**
 * Installs the extras that the managed environment lacks (pip, from their lock files; the demo's without
 * dependencies). A no-op with TEXTBREWER_PYTHON or when the managed environment is not built yet (setup builds it
 * first). Concurrent callers are serialised by `withLock` of the environment's setup lock.
 */
export async function ensureExtras(
  names: readonly Extra[],
  withLock: <T>(lockDir: string, fn: () => Promise<T>) => Promise<T>,
  options: ExtrasOptions = {},
): Promise<Extra[]> {
  if (process.env.TEXTBREWER_PYTHON) return [];
  const dir = venvDir();
  if (!existsSync(completeMarker(dir))) return [];
  const missing = names.filter((name) => !hasExtra(name, dir));
  if (missing.length === 0) return [];
  const log = options.log ?? ((s: string) => console.error(s));
  return withLock(`${dir}.lock`, async () => {
    const installed: Extra[] = [];
    for (const name of missing) {
      if (hasExtra(name, dir)) continue;
      log(`setup: adding the '${name}' extra (${EXTRAS[name].purpose})`);
      const args = ["-m", "pip", "install", "--disable-pip-version-check", "-q", ...(EXTRAS[name].noDeps ? ["--no-deps"] : [])];
      await execa(venvPython(dir), [...args, "-r", extraLockFile(name)], { stdout: "inherit", stderr: "inherit" });
      writeFileSync(extraMarker(dir, name), lockHash(extraLockFile(name)));
      installed.push(name);
    }
    return installed;
  });
}
