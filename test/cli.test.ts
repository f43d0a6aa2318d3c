/** The `textbrewer` command as a user runs it: from a clone through npx, and each command's arguments and output. */
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acceptedRange, acceptsVersion, readPins } from "../src/env/pinned-versions.js";
import { resolvePython } from "../src/env/python-env.js";
import { makeTinyBert, tempDir } from "./helpers/fixtures.js";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = join(ROOT, "dist", "cli", "main.js");
const SLOW = Boolean(process.env.TEXTBREWER_SLOW_TESTS);
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  scripts: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};

/** Runs the built CLI; never rejects, so a test sees the exit code and both streams. */
function cli(args: string[], env: Record<string, string> = {}) {
  return execa(process.execPath, [BIN, ...args], { cwd: ROOT, env, reject: false, timeout: 120_000 });
}

const npx = (args: string[]) => execa("npx", ["--no-install", "textbrewer", ...args], { cwd: ROOT, reject: false, timeout: 120_000 });

describe("the CLI from a clone", () => {
  it("the build marks the bin executable, so npx textbrewer --version and doctor run right after it", async () => {
    const [compile, ...postBuild] = pkg.scripts.build!.split("&&").map((s) => s.trim());
    expect(compile).toMatch(/^tsc /);
    chmodSync(BIN, 0o644); // as tsc writes a new file
    for (const step of postBuild) await execa(step, { cwd: ROOT, shell: true });
    expect(statSync(BIN).mode & 0o111).toBe(0o111);
    const version = await npx(["--version"]);
    expect(version.stderr).toBe("");
    expect(version.stdout.trim()).toBe(pkg.version);
    const doctor = await npx(["doctor"]);
    expect(doctor.exitCode).toBe(0);
    expect(doctor.stdout).toMatch(/^status +ok$/m);
  });

  it.skipIf(!SLOW)(
    "npm run build leaves the bin executable (TEXTBREWER_SLOW_TESTS=1)",
    async () => {
      chmodSync(BIN, 0o644);
      await execa("npm", ["run", "build"], { cwd: ROOT, timeout: 180_000 });
      expect(statSync(BIN).mode & 0o111).toBe(0o111);
      expect((await npx(["--version"])).stdout.trim()).toBe(pkg.version);
    },
    200_000,
  );

  it("every dependency's install script is covered by the reviewed allowScripts policy", async () => {
    expect(Object.keys(pkg.allowScripts ?? {}).sort()).toEqual(["esbuild", "onnxruntime-node", "zeromq"]);
    const r = await execa("npm", ["install-scripts", "ls"], { cwd: ROOT, timeout: 60_000 });
    expect(r.stdout.trim()).toBe("No packages with unreviewed install scripts.");
  });
});

describe("arguments", () => {
  it("refuses an unknown option of each command with 'did you mean' and its synopsis, exit 2", async () => {
    const cases: [string[], string][] = [
      [["setup", "--froce"], "textbrewer setup: unknown option '--froce' (did you mean '--force'?)"],
      [["doctor", "--jsn"], "textbrewer doctor: unknown option '--jsn' (did you mean '--json'?)"],
      [["inspect", "x", "--JSON"], "textbrewer inspect: unknown option '--JSON' (did you mean '--json'?)"],
      [["report", "run", "--titel", "t"], "textbrewer report: unknown option '--titel' (did you mean '--title'?)"],
      [["doctr"], "textbrewer: unknown command 'doctr' (did you mean 'doctor'?)"],
      [["--verison"], "textbrewer: unknown option '--verison' (did you mean '--version'?)"],
      [["inspect"], "textbrewer inspect: missing <checkpoint>"],
      [["report", "--out"], "textbrewer report: --out needs a value"],
      [["doctor", "--json=yes"], "textbrewer doctor: --json takes no value"],
      [["doctor", "extra"], "textbrewer doctor: unexpected argument 'extra'"],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.exitCode, args.join(" ")).toBe(2);
      const [first, usage] = r.stderr.split("\n");
      expect(first).toBe(message);
      expect(usage).toMatch(/^usage: textbrewer /);
      expect(r.stdout).toBe("");
    }
  });

  it("--version prints the package's version; --help lists every TEXTBREWER_ variable the package reads", async () => {
    expect((await cli(["--version"])).stdout.trim()).toBe(pkg.version);
    const help = await cli(["--help"]);
    expect(help.exitCode).toBe(0);
    const read = new Set<string>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith(".ts"))
          for (const m of readFileSync(path, "utf8").matchAll(/process\.env\.(TEXTBREWER_\w+)/g)) read.add(m[1]!);
      }
    };
    walk(join(ROOT, "src"));
    expect(read.size).toBeGreaterThanOrEqual(4);
    for (const name of read) expect(help.stdout).toMatch(new RegExp(`^  ${name} `, "m"));
    const inspectHelp = await cli(["inspect", "--help"]);
    expect(inspectHelp.exitCode).toBe(0);
    expect(inspectHelp.stdout).toMatch(/^usage: textbrewer inspect <checkpoint> \[--json\]$/m);
  });
});

describe("doctor", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const pins = readPins();

  it("accepts the pin's major.minor for torch and transformers, the pin's major for the others (major.minor below 1.0)", () => {
    expect(acceptedRange("torch", "2.9.1")).toBe("2.9.*");
    expect(acceptsVersion("torch", "2.9.1", "2.9.0+cu128")).toBe(true);
    expect(acceptsVersion("torch", "2.9.1", "2.10.0")).toBe(false);
    expect(acceptsVersion("transformers", "4.57.6", "4.56.2")).toBe(false);
    expect(acceptedRange("numpy", "2.3.5")).toBe("2.*");
    expect(acceptsVersion("numpy", "2.3.5", "2.0.1")).toBe(true);
    expect(acceptsVersion("numpy", "2.3.5", "1.26.4")).toBe(false);
    expect(acceptedRange("safetensors", "0.7.0")).toBe("0.7.*");
    expect(acceptsVersion("safetensors", "0.7.0", "0.6.2")).toBe(false);
    expect(acceptsVersion("pyzmq", "27.1.0", "27")).toBe(true);
  });

  it("--json reports each package against its pin in requirements.lock", async () => {
    const r = await cli(["doctor", "--json"]);
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(true);
    expect(report.textbrewer).toBe(pkg.version);
    const torch = report.packages.find((p: { package: string }) => p.package === "torch");
    expect(torch).toMatchObject({ module: "torch", required: true, pinned: pins.get("torch"), status: "ok" });
    expect(torch.accepts).toBe(acceptedRange("torch", pins.get("torch")!));
    expect(report.packages.map((p: { package: string }) => p.package)).toEqual(
      expect.arrayContaining(["torch", "transformers", "safetensors", "pyzmq", "numpy", "fastjsonschema"]),
    );
  });

  it("names a version outside the accepted range in TEXTBREWER_PYTHON's environment, with the pin to install", async () => {
    // the worker's interpreter, with distribution records on PYTHONPATH that shadow the installed versions
    const shadow = join(tmp.path, "site");
    const record = (name: string, version: string) => {
      const dir = join(shadow, `${name}-${version}.dist-info`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "METADATA"), `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n`);
    };
    record("transformers", "4.40.0");
    record("POT", "0.8.0");
    const { python } = resolvePython();
    const r = await cli(["doctor"], { TEXTBREWER_PYTHON: python, PYTHONPATH: shadow });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^transformers +4\.40\.0 +MISMATCH /m);
    const pinned = pins.get("transformers")!;
    expect(r.stdout).toContain(
      `  - transformers 4.40.0 is not a version the worker accepts (${acceptedRange("transformers", pinned)}; pinned ${pinned}): ` +
        `\`${python} -m pip install transformers==${pinned}\``,
    );
    // an optional package outside its range is a warning, not a problem
    expect(r.stdout).toMatch(/^warning +POT 0\.8\.0 is not a version the worker accepts .*\(optional: used for the EMD losses\)$/m);
    expect(r.stdout).not.toMatch(/^ {2}- POT/m);
  });

  it("reports an interpreter that cannot run in one line naming the path and the fix, not its script", async () => {
    const missing = join(tmp.path, "no-python");
    const r = await cli(["doctor"], { TEXTBREWER_PYTHON: missing });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).not.toContain("import");
    const problems = r.stdout.split("\n").filter((l) => l.startsWith("  - "));
    expect(problems).toEqual([
      `  - cannot run TEXTBREWER_PYTHON=${missing}: no such file; set TEXTBREWER_PYTHON to a Python ≥ 3.10 with the ` +
        "worker's packages, or unset it to use the managed environment (`npx textbrewer setup`)",
    ]);
    const notExecutable = join(tmp.path, "python.txt");
    writeFileSync(notExecutable, "");
    const json = JSON.parse((await cli(["doctor", "--json"], { TEXTBREWER_PYTHON: notExecutable })).stdout);
    expect(json.ok).toBe(false);
    expect(json.problems).toEqual([
      expect.stringMatching(/^cannot run TEXTBREWER_PYTHON=.*python\.txt: not executable \(permission denied\); /),
    ]);
  });
});

describe("inspect", () => {
  const tmp = tempDir();
  let folder: string;
  beforeAll(async () => {
    folder = await makeTinyBert(join(tmp.path, "bert"), { layers: 3, seed: 2 });
  });
  afterAll(() => tmp.cleanup());

  it("prints a table of modules with shapes, dtypes and parameters, and totals; --json gives the data", async () => {
    const json = await cli(["inspect", "--json", folder]);
    expect(json.exitCode).toBe(0);
    const info = JSON.parse(json.stdout);
    const r = await cli(["inspect", folder]);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.length).toBeLessThan(45);
    expect(lines[0]).toBe(`checkpoint  ${info.path}  (hf-folder, bert, BertForSequenceClassification)`);
    expect(r.stdout).toMatch(/^module +shape +dtype +parameters$/m);
    expect(r.stdout).toMatch(/^classifier +bias 3, weight 3×32 +F32 +99$/m);
    expect(r.stdout).toMatch(/^bert\.encoder\.layer\.2\.attention\.self\.query +bias 32, weight 32×32 +F32 +1,056$/m);
    const total = info.numParameters.toLocaleString("en-US");
    expect(lines.at(-1)).toBe(`total       ${info.numTensors} tensors, ${total} parameters (F32 ${total})`);
  });

  it("a missing checkpoint is one line with either output", async () => {
    for (const args of [
      ["inspect", join(tmp.path, "nope")],
      ["inspect", "--json", join(tmp.path, "nope")],
    ]) {
      const r = await cli(args);
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trim()).toBe(`textbrewer: '${join(tmp.path, "nope")}' does not exist`);
    }
  });
});
