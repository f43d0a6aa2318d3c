/**
 * Vitest global setup: the suite must leave nothing in the temp folder.
 *
 * Before the run it gives the suite a temp folder of its own (TMPDIR, which os.tmpdir() and Python's tempfile read,
 * and which the test processes and the workers they start inherit), so what remains there afterwards is this run's
 * alone, even with other runs going on in the system's temp folder at the same time. After the run it lists what is
 * left (test folders, the workers' ipc folders "tbw-*", cache folders…), fails the run if anything is, and removes the
 * folder either way. With a test name filter (-t) it only warns: a describe block whose tests are all filtered out
 * skips its afterAll, so the folder its body made at collection stays.
 *
 * Caches that tools keep in the temp folder by design (tsx's transform cache, TorchInductor's compile cache) are not
 * leftovers of the project: they are not listed, and go with the folder.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

/** Set to keep the leftovers for a look instead of removing them after reporting. */
const KEEP = "TEXTBREWER_KEEP_TEST_TMP";
/** tsx-<uid> (`node --import tsx` helper scripts), torchinductor_<user> (tests with compile: true) */
const TOOL_CACHES = [/^tsx-\d+$/, /^torchinductor_/];

export default function setup(project: TestProject): () => void {
  const outer = tmpdir();
  const own = mkdtempSync(join(outer, "tbts-suite-"));
  const saved = { TMPDIR: process.env.TMPDIR, TMP: process.env.TMP, TEMP: process.env.TEMP };
  process.env.TMPDIR = own;
  process.env.TMP = own;
  process.env.TEMP = own;
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    const left = readdirSync(own)
      .filter((name) => !TOOL_CACHES.some((cache) => cache.test(name)))
      .sort();
    if (!process.env[KEEP]) rmSync(own, { recursive: true, force: true });
    if (left.length === 0) return;
    const where = process.env[KEEP] ? own : `the suite's temp folder (removed now; set ${KEEP}=1 to keep it)`;
    const message =
      `The test suite left ${left.length} entr${left.length === 1 ? "y" : "ies"} in ${where}: ${left.join(", ")}. ` +
      "A test (or the library code it runs) does not remove what it creates in os.tmpdir().";
    if (project.config.testNamePattern !== undefined) {
      console.warn(`${message} (Not an error with a test name filter: skipped describe blocks skip their afterAll.)`);
      return;
    }
    // vitest prints an error thrown here but does not fail the run for it
    process.exitCode = 1;
    throw new Error(message);
  };
}
