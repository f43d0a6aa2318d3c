import { execa } from "execa";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inspectCheckpoint, withPython, Worker } from "../src/index.js";
import { makeTinyBert, tempDir } from "./helpers/fixtures.js";

describe("pythonia interop (no worker)", () => {
  const tmp = tempDir();
  let folder: string;
  beforeAll(async () => {
    folder = await makeTinyBert(join(tmp.path, "bert"), { layers: 2, seed: 4 });
  });
  afterAll(() => tmp.cleanup());

  it("inspects a checkpoint: config, tensors and the parameter count the worker agrees with", async () => {
    const info = await inspectCheckpoint(folder);
    expect(info.kind).toBe("hf-folder");
    expect(info.modelType).toBe("bert");
    expect(info.architectures).toEqual(["BertForSequenceClassification"]);
    expect(info.tensors!["classifier.weight"]).toEqual({ shape: [3, 32], dtype: "F32" });
    await using worker = await Worker.start({ device: "cpu" });
    const model = await worker.loadModel({ path: folder });
    expect(info.numParameters).toBe(await model.numParameters());
  });

  it("reports a missing checkpoint with the Python error", async () => {
    await expect(inspectCheckpoint(join(tmp.path, "nope"))).rejects.toThrow(/does not exist/);
  });

  it("hands a script the bridge and shuts the interpreter down so Node can exit", async () => {
    const value = await withPython(async (python) => {
      const json = await python("json");
      return (await json.dumps({ a: [1, 2] })) as string;
    });
    expect(JSON.parse(value)).toEqual({ a: [1, 2] });
    // a second use gets a fresh interpreter
    const again = await withPython(async (python) => (await (await python("math")).sqrt(16)) as number);
    expect(again).toBe(4);
    const script = `import { withPython } from "./src/index.ts"; const r = await withPython(async (py) => (await (await py("math")).floor(2.5))); console.log(r);`;
    const child = await execa("node", ["--import", "tsx", "--input-type=module", "-e", script], { timeout: 60_000, reject: false });
    expect(child.timedOut).toBe(false);
    expect(String(child.stdout).trim()).toBe("2");
  });

  it("importing the package does not start Python", async () => {
    const script = `import "./src/index.ts"; import { execSync } from "node:child_process"; console.log(execSync("ps -o comm= --ppid " + process.pid).toString().includes("python") ? "python" : "none");`;
    const r = await execa("node", ["--import", "tsx", "--input-type=module", "-e", script], { timeout: 60_000 });
    expect(String(r.stdout).trim()).toBe("none");
  });
});
