/**
 * The versions `doctor` accepts for the worker's packages, read from the pins in python_worker/requirements.lock.
 * The managed environment installs exactly the pins; an interpreter of one's own (TEXTBREWER_PYTHON) is accepted
 * when each package has the pin's major.minor for torch and transformers (their minor releases change the APIs the
 * worker uses: torch.amp, state-dict loading, model classes) and the pin's major for the others (the pin's
 * major.minor for a 0.x version, where minor releases break).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { requirementsFile, workerSourceDir } from "./paths.js";

/** Packages whose accepted range is the pin's major.minor. */
const SAME_MINOR = new Set(["torch", "transformers"]);

/** `name==version` lines of a requirements lock (comments, blank lines and other specifiers ignored). */
export function readPins(file = requirementsFile()): Map<string, string> {
  const pins = new Map<string, string>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)/.exec(line);
    if (m) pins.set(m[1]!.toLowerCase(), m[2]!);
  }
  return pins;
}

/** The release part of a version: "2.9.1+cu128" and "2.9.1rc1" give [2, 9, 1]. */
function release(version: string): number[] {
  return (/^\d+(?:\.\d+)*/.exec(version.trim())?.[0] ?? "").split(".").filter(Boolean).map(Number);
}

/** How many leading release numbers must equal the pin's. */
function matchedParts(pkg: string, pinned: string): number {
  return SAME_MINOR.has(pkg.toLowerCase()) || release(pinned)[0] === 0 ? 2 : 1;
}

/** The accepted range in words, e.g. "2.9.*" for torch==2.9.1, "2.*" for numpy==2.3.5. */
export function acceptedRange(pkg: string, pinned: string): string {
  return `${release(pinned).slice(0, matchedParts(pkg, pinned)).join(".")}.*`;
}

/** Whether `installed` is in the range `doctor` accepts for a package pinned at `pinned`. */
export function acceptsVersion(pkg: string, pinned: string, installed: string): boolean {
  const want = release(pinned);
  const have = release(installed);
  const n = matchedParts(pkg, pinned);
  return have.length >= n && want.slice(0, n).every((part, i) => have[i] === part);
}

/** The pins of requirements.lock and of every extra's lock (python_worker/extras/*.lock), e.g. POT for EMD. */
export function allPins(): Map<string, string> {
  const pins = readPins();
  const extras = join(workerSourceDir(), "extras");
  const files = existsSync(extras) ? readdirSync(extras).filter((f) => f.endsWith(".lock")) : [];
  for (const file of files.sort()) for (const [name, version] of readPins(join(extras, file))) if (!pins.has(name)) pins.set(name, version);
  return pins;
}
