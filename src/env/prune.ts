/** Removing managed environments built for other versions of the pinned requirements. */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cacheRoot, toolsEnvDir, venvDir } from "./paths.js";
import { lockHeld } from "./python-env.js";

export interface PruneResult {
  removed: string[];
  /** Environments another process is building right now. */
  skipped: string[];
}

/**
 * Deletes every `venv-*` (worker) and `tools-*` (lint tools) folder in the cache except this version's, and except
 * one whose setup lock is held by a live process. Each environment is large; a change of the lock files leaves the
 * old one behind. An environment that another checkout still uses goes too, so run it when none is.
 */
export function pruneEnvironments(options: { dryRun?: boolean } = {}): PruneResult {
  const root = cacheRoot();
  const keep = new Set([venvDir(), toolsEnvDir()]);
  const result: PruneResult = { removed: [], skipped: [] };
  if (!existsSync(root)) return result;
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    if (!/^(venv|tools)-[0-9a-f]+$/.test(name) || keep.has(dir)) continue;
    if (lockHeld(`${dir}.lock`)) {
      result.skipped.push(dir);
      continue;
    }
    if (!options.dryRun) {
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.lock`, { recursive: true, force: true });
    }
    result.removed.push(dir);
  }
  return result;
}
