import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { Worker } from "../src/index.js";
import { CheckpointInspectError, inspectCheckpoint, withPython } from "../src/interop/index.js";
import { makeTinyBert, runPython, useTempDir } from "./helpers/fixtures.js";

async function inspectError(path: string): Promise<{ error: CheckpointInspectError; ms: number }> {
  const start = Date.now();
  const error = await inspectCheckpoint(path).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CheckpointInspectError);
  expect((error as Error).message).not.toContain("\n");
  return { error: error as CheckpointInspectError, ms: Date.now() - start };
}

describe("pythonia interop (no worker)", () => {
  const tmp = useTempDir();
  let folder: string;
  beforeAll(async () => {
    folder = await makeTinyBert(join(tmp.path, "bert"), { layers: 2, seed: 4 });
  });

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

  it("reports a missing or damaged checkpoint in one line naming the file, before Python starts", async () => {
    const missing = await inspectError(join(tmp.path, "nope"));
    expect(missing.error.message).toBe(`'${join(tmp.path, "nope")}' does not exist`);
    expect(missing.ms).toBeLessThan(500);
    const truncated = join(tmp.path, "truncated");
    cpSync(folder, truncated, { recursive: true });
    const weights = readFileSync(join(folder, "model.safetensors"));
    writeFileSync(join(truncated, "model.safetensors"), weights.subarray(0, weights.length >> 1));
    const st = await inspectError(truncated);
    expect(st.error.path).toBe(join(truncated, "model.safetensors"));
    expect(st.error.message).toMatch(
      /^'.*truncated\/model\.safetensors' is not a valid safetensors file, it is truncated \(its tensors need \d+ bytes of data, it holds \d+\)$/,
    );
    expect(st.ms).toBeLessThan(500);
    writeFileSync(join(truncated, "config.json"), '{"model_type": ');
    expect((await inspectError(truncated)).error.message).toMatch(/^'.*truncated\/config\.json' is not valid JSON/);
    const pt = join(tmp.path, "weights.pt");
    await runPython("import sys, torch\ntorch.save({'w': torch.zeros(1000)}, sys.argv[1])", [pt]);
    writeFileSync(pt, readFileSync(pt).subarray(0, 700));
    expect((await inspectError(pt)).error.message).toBe(
      `'${pt}' is truncated or damaged (a torch.save archive without its central directory)`,
    );
    writeFileSync(join(tmp.path, "empty.bin"), "");
    expect((await inspectError(join(tmp.path, "empty.bin"))).error.message).toMatch(/empty\.bin' is empty$/);
  });

  it("reports a pickle payload that weights-only loading refuses, in one line", async () => {
    const pt = join(tmp.path, "pickled.pt");
    await runPython("import sys, torch\nclass Note:\n    pass\ntorch.save({'w': torch.zeros(2), 'note': Note()}, sys.argv[1])", [pt]);
    const { error } = await inspectError(pt);
    expect(error.message).toBe(
      `'${pt}' holds pickled Python objects that weights-only loading refuses (Unsupported global: GLOBAL __main__.Note was not an allowed global by default)`,
    );
  });

  it("the inspect command prints one line and exits 1", async () => {
    const r = await execa("node", ["--import", "tsx", "src/cli/main.ts", "inspect", join(tmp.path, "nope")], {
      timeout: 60_000,
      reject: false,
    });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr).trim()).toBe(`textbrewer: '${join(tmp.path, "nope")}' does not exist`);
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
    const script = `import { withPython } from "./src/interop/index.ts"; const r = await withPython(async (py) => (await (await py("math")).floor(2.5))); console.log(r);`;
    const child = await execa("node", ["--import", "tsx", "--input-type=module", "-e", script], { timeout: 60_000, reject: false });
    expect(child.timedOut).toBe(false);
    expect(String(child.stdout).trim()).toBe("2");
  });

  it("importing the package does not start Python", async () => {
    const script = `import "./src/index.ts"; import "./src/interop/index.ts"; import { execSync } from "node:child_process"; console.log(execSync("ps -o comm= --ppid " + process.pid).toString().includes("python") ? "python" : "none");`;
    const r = await execa("node", ["--import", "tsx", "--input-type=module", "-e", script], { timeout: 60_000 });
    expect(String(r.stdout).trim()).toBe("none");
  });
});
