/** Removing managed environments built for other versions of the pinned requirements. */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cacheRoot, venvDir } from "./paths.js";
import { lockHeld } from "./python-env.js";

export interface PruneResult {
  removed: string[];
  /** Environments another process is building right now. */
  skipped: string[];
}

/**
 * Deletes every `venv-*` folder in the cache except this version's, and except one whose setup lock is held by a
 * live process. Each environment is several GB; a change of the lock files leaves the old one behind. An
 * environment that another checkout's worker still uses goes too, so run it when none is.
 */
export function pruneEnvironments(options: { dryRun?: boolean } = {}): PruneResult {
  const root = cacheRoot();
  const keep = venvDir();
  const result: PruneResult = { removed: [], skipped: [] };
  if (!existsSync(root)) return result;
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    if (!/^venv-[0-9a-f]+$/.test(name) || dir === keep) continue;
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
