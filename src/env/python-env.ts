/** The worker's Python environment: find it, build it (`textbrewer setup`), check it (`textbrewer doctor`). */

import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { execa } from "execa";
import { type Extra, ensureExtras } from "./extras.js";
import {
  cacheRoot,
  completeMarker,
  devRequirementsFile,
  packageRoot,
  requirementsFile,
  requirementsHash,
  toolsEnvDir,
  venvDir,
  venvPython,
  workerSourceDir,
} from "./paths.js";
import { acceptedRange, acceptsVersion, allPins } from "./pinned-versions.js";

export class PythonEnvError extends Error {
  override readonly name = "PythonEnvError";
}

export interface ResolvedPython {
  python: string;
  /** Where the interpreter came from: the TEXTBREWER_PYTHON variable, an explicit option, or the managed venv. */
  source: "option" | "TEXTBREWER_PYTHON" | "managed";
}

/** The interpreter the worker runs on. Throws with the fix when none is ready. */
export function resolvePython(explicit?: string): ResolvedPython {
  if (explicit) return { python: explicit, source: "option" };
  const fromEnv = process.env.TEXTBREWER_PYTHON;
  if (fromEnv) return { python: fromEnv, source: "TEXTBREWER_PYTHON" };
  if (existsSync(completeMarker())) return { python: venvPython(), source: "managed" };
  throw new PythonEnvError(
    `no Python environment for the worker yet (expected ${venvDir()}). ` +
      "Run `npx textbrewer setup` (npm test and npm run demo do it for you), or set TEXTBREWER_PYTHON to an " +
      "interpreter that has torch, transformers, safetensors, pyzmq, numpy and fastjsonschema.",
  );
}

/** Environment variables of every Python process we start: the worker package on PYTHONPATH. */
/**
 * glibc malloc settings for Python processes (your own GLIBC_TUNABLES wins). Fresh memory faults in page by page,
 * which is slow on a VM. By default glibc hands the top of its heap back to the system once more than its trim
 * threshold (128 KiB, rising to 64 MiB as large blocks are freed) is free there, and maps blocks above its mmap
 * threshold afresh each time, so a training step that frees its activations and allocates them again the next step
 * can fault them in again, and the first operation to write a fresh activation buffer runs slow. Here the heap
 * keeps up to 1 GiB of free memory (RSS stays near the peak step's, which recurs anyway), blocks up to 32 MiB come
 * from the heap, and larger ones get huge pages (`hugetlb=1`), which also makes big tensor frames faster to receive.
 * Set the two thresholds together: setting either one turns off glibc's adjustment of the other, and a trim
 * threshold alone leaves the mmap threshold at 128 KiB. What these settings changed in the benchmarks:
 * bench/README.md, "Figures behind settings in the code".
 */
export const WORKER_MALLOC_TUNABLES = "glibc.malloc.hugetlb=1:glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432";

export function pythonEnv(extra: Record<string, string> = {}): Record<string, string> {
  const pythonPath = [workerSourceDir(), process.env.PYTHONPATH].filter(Boolean).join(delimiter);
  return {
    PYTHONPATH: pythonPath,
    PYTHONUNBUFFERED: "1",
    PYTHONDONTWRITEBYTECODE: "1",
    GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? WORKER_MALLOC_TUNABLES,
    TOKENIZERS_PARALLELISM: process.env.TOKENIZERS_PARALLELISM ?? "false",
    HF_HUB_OFFLINE: "1",
    TRANSFORMERS_OFFLINE: "1",
    ...extra,
  };
}

const MIN_PYTHON: [number, number] = [3, 10];

async function pythonVersion(python: string): Promise<[number, number] | null> {
  const r = await execa(python, ["-c", "import sys; print(sys.version_info[0], sys.version_info[1])"], { reject: false });
  if (r.exitCode !== 0 || typeof r.stdout !== "string") return null;
  const [maj, min] = r.stdout.trim().split(" ").map(Number);
  return maj !== undefined && min !== undefined ? [maj, min] : null;
}

async function findBasePython(): Promise<string> {
  const candidates = [process.env.TEXTBREWER_BASE_PYTHON, "python3.11", "python3.12", "python3", "python3.10", "python3.13", "python"];
  for (const c of candidates) {
    if (!c) continue;
    const v = await pythonVersion(c);
    if (v && (v[0] > MIN_PYTHON[0] || (v[0] === MIN_PYTHON[0] && v[1] >= MIN_PYTHON[1]))) return c;
  }
  throw new PythonEnvError(
    `no Python ≥ ${MIN_PYTHON.join(".")} found on PATH (tried python3.11, python3.12, python3, …). ` +
      "Install one, or set TEXTBREWER_BASE_PYTHON to its path, or TEXTBREWER_PYTHON to a ready interpreter.",
  );
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether a setup lock (a directory holding its owner's pid) belongs to a live process. */
export function lockHeld(lockDir: string): boolean {
  try {
    const owner = Number(readFileSync(join(lockDir, "pid"), "utf8"));
    return Number.isFinite(owner) && owner > 0 && processAlive(owner);
  } catch {
    return existsSync(lockDir); // the pid is being written
  }
}

/** A lock directory holding the owner's pid; a lock whose owner died is taken over. */
async function withLock<T>(lockDir: string, fn: () => Promise<T>, log: (s: string) => void): Promise<T> {
  const ownerFile = join(lockDir, "pid");
  for (let waited = 0; ; waited++) {
    try {
      mkdirSync(lockDir);
      writeFileSync(ownerFile, String(process.pid));
      break;
    } catch {
      let owner = NaN;
      try {
        owner = Number(readFileSync(ownerFile, "utf8"));
      } catch {
        /* being written, or gone */
      }
      const ageMs = existsSync(lockDir) ? Date.now() - statSync(lockDir).mtimeMs : 0;
      if ((Number.isFinite(owner) && owner > 0 && !processAlive(owner)) || (!Number.isFinite(owner) && ageMs > 60_000)) {
        log(`setup: removing a stale lock left by process ${owner}`);
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (waited % 30 === 0) log(`setup: another process (${owner}) is building the environment; waiting…`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

export interface SetupOptions {
  log?: (line: string) => void;
  /** Rebuild even when a complete environment exists. */
  force?: boolean;
  /** Extras to add to the managed environment (see extras.ts), e.g. ["emd", "demo"]. */
  with?: readonly Extra[];
}

/**
 * Adds the extras the managed environment lacks (e.g. "emd" before EMD first runs); returns those installed. A no-op
 * with TEXTBREWER_PYTHON, where the worker's error names the pins to install.
 */
export async function addExtras(names: readonly Extra[], options: { log?: (line: string) => void } = {}): Promise<Extra[]> {
  const log = options.log ?? ((s: string) => console.error(s));
  return ensureExtras(names, (lockDir, fn) => withLock(lockDir, fn, log), { log });
}

interface VenvSpec {
  dir: string;
  /** `pip install` arguments, one list per install, run in order. */
  installs: string[][];
  /** Whether to upgrade pip first (the worker's wheels want a recent one). */
  upgradePip: boolean;
  /** Throws when the new environment is unusable; runs before the marker is written. */
  check?: (python: string) => Promise<void>;
  /** What the marker records about the build. */
  marker: Record<string, string>;
  /** Said when the build starts. */
  note: string;
}

/**
 * Builds a virtual environment at `spec.dir` under a setup lock and returns its interpreter. Idempotent;
 * interrupt-safe: the marker is written last, and a folder without it is deleted and rebuilt.
 */
async function buildVenv(spec: VenvSpec, options: SetupOptions): Promise<string> {
  const log = options.log ?? ((s: string) => console.error(s));
  const { dir } = spec;
  if (!options.force && existsSync(completeMarker(dir))) return venvPython(dir);
  mkdirSync(cacheRoot(), { recursive: true });
  return withLock(
    `${dir}.lock`,
    async () => {
      if (!options.force && existsSync(completeMarker(dir))) return venvPython(dir);
      if (existsSync(dir)) {
        log(`setup: removing the half-built environment ${dir}`);
        rmSync(dir, { recursive: true, force: true });
      }
      const base = await findBasePython();
      log(`setup: creating ${dir} with ${base}${spec.note}`);
      const stdio = { stdout: "inherit", stderr: "inherit" } as const;
      await execa(base, ["-m", "venv", dir], stdio);
      const python = venvPython(dir);
      const pipInstall = (args: string[]) => execa(python, ["-m", "pip", "install", "--disable-pip-version-check", ...args], stdio);
      if (spec.upgradePip) await pipInstall(["-q", "--upgrade", "pip"]);
      for (const args of spec.installs) await pipInstall(args);
      await spec.check?.(python);
      writeFileSync(completeMarker(dir), JSON.stringify({ ...spec.marker, builtAt: new Date().toISOString() }));
      log(`setup: ready (${python})`);
      return python;
    },
    log,
  );
}

/**
 * Builds the managed virtual environment keyed by the requirements hash. Idempotent; interrupt-safe: the marker
 * is written last, and a folder without it is deleted and rebuilt.
 */
export async function setupPythonEnv(options: SetupOptions = {}): Promise<ResolvedPython> {
  const log = options.log ?? ((s: string) => console.error(s));
  if (process.env.TEXTBREWER_PYTHON) {
    log(`setup: using TEXTBREWER_PYTHON=${process.env.TEXTBREWER_PYTHON} (nothing to build)`);
    return { python: process.env.TEXTBREWER_PYTHON, source: "TEXTBREWER_PYTHON" };
  }
  const installs = [["-r", requirementsFile()]];
  const python = await buildVenv(
    {
      dir: venvDir(),
      installs,
      upgradePip: true,
      check: async (python) => {
        const check = await doctor({ python });
        if (!check.ok) throw new PythonEnvError(`setup: the new environment fails its checks:\n${formatDoctor(check)}`);
      },
      marker: { requirementsHash: requirementsHash() },
      note: " (torch is large: the first build takes several minutes)",
    },
    options,
  );
  if (options.with?.length) await addExtras(options.with, { log });
  return { python, source: "managed" };
}

/**
 * The development tools' environment (ruff for `npm run lint`), built on first use from its own lock file into
 * the cache, beside the worker's and apart from it, so that the worker's environment never changes for a tool.
 * Returns the folder; `venvScript(dir, "ruff")` is the tool.
 */
export async function setupToolsEnv(options: SetupOptions & { lockFile?: string } = {}): Promise<string> {
  const lockFile = options.lockFile ?? devRequirementsFile();
  const dir = toolsEnvDir(lockFile);
  await buildVenv({ dir, installs: [["-q", "-r", lockFile]], upgradePip: false, marker: { lockFile }, note: "" }, options);
  return dir;
}

/** One of the worker's Python packages as `doctor` found it, against its pin in python_worker/requirements.lock. */
export interface PackageCheck {
  /** The distribution's name, as pip spells it (pyzmq, POT). */
  package: string;
  /** The module the worker imports (zmq, ot). */
  module: string;
  /** Whether the worker needs it; optional ones serve one feature (`purpose`). */
  required: boolean;
  purpose?: string;
  /** The installed version, or null when the module does not import. */
  installed: string | null;
  pinned: string | null;
  /** The versions accepted, e.g. "2.9.*" (see pinned-versions.ts); null when the lock has no pin. */
  accepts: string | null;
  status: "ok" | "missing" | "mismatch";
}

export interface DoctorReport {
  ok: boolean;
  /** This package's version. */
  textbrewer: string;
  python: string;
  source: ResolvedPython["source"] | "missing";
  /** Python's version and each module's, by module name (null: missing). */
  versions: Record<string, string | null>;
  packages: PackageCheck[];
  cuda: { available: boolean; version: string | null; devices: string[] } | null;
  /** What stops the worker from running, each with its fix. */
  problems: string[];
  /** What works but differs from the pins (an optional package outside its accepted versions). */
  warnings: string[];
}

/** The worker's packages: distribution name, module name, and for optional ones what they serve. */
const WORKER_PACKAGES: readonly { package: string; module: string; purpose?: string }[] = [
  { package: "torch", module: "torch" },
  { package: "transformers", module: "transformers" },
  { package: "safetensors", module: "safetensors" },
  { package: "pyzmq", module: "zmq" },
  { package: "numpy", module: "numpy" },
  { package: "fastjsonschema", module: "fastjsonschema" },
  { package: "tensorboard", module: "tensorboard", purpose: "TensorBoard logging" },
  { package: "POT", module: "ot", purpose: "the EMD losses" },
];

const DOCTOR_SCRIPT = `
import importlib, importlib.metadata, json, sys
out = {"python": sys.version.split()[0], "executable": sys.executable, "modules": {}, "cuda": None}
for dist, name in ${JSON.stringify(WORKER_PACKAGES.map((p) => [p.package, p.module]))}:
    try:
        m = importlib.import_module(name)
    except Exception:
        out["modules"][name] = None
        continue
    try:
        out["modules"][name] = importlib.metadata.version(dist)
    except Exception:
        out["modules"][name] = getattr(m, "__version__", "present")
try:
    import torch
    out["cuda"] = {"available": torch.cuda.is_available(), "version": torch.version.cuda,
                   "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
except Exception:
    pass
print(json.dumps(out))
`;

/** This package's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}

/** How to fix an interpreter that cannot run, by where it came from. */
function interpreterFix(resolved: ResolvedPython): string {
  switch (resolved.source) {
    case "TEXTBREWER_PYTHON":
      return "set TEXTBREWER_PYTHON to a Python ≥ 3.10 with the worker's packages, or unset it to use the managed environment (`npx textbrewer setup`)";
    case "option":
      return "pass the path of a Python ≥ 3.10 with the worker's packages";
    case "managed":
      return "rebuild the managed environment: `npx textbrewer setup --force`";
  }
}

/** Why an interpreter did not run, in one line (never the script it was given). */
function runFailure(result: { code?: string; exitCode?: number; stderr?: unknown; signal?: string }): string {
  if (result.code === "ENOENT") return "no such file";
  if (result.code === "EACCES") return "not executable (permission denied)";
  if (result.code) return result.code;
  const lastLine = String(result.stderr ?? "")
    .trim()
    .split("\n")
    .pop();
  if (lastLine) return lastLine;
  return result.signal ? `killed by ${result.signal}` : `exit code ${result.exitCode}`;
}

function checkPackage(spec: (typeof WORKER_PACKAGES)[number], installed: string | null, pins: Map<string, string>): PackageCheck {
  const pinned = pins.get(spec.package.toLowerCase()) ?? null;
  const accepts = pinned === null ? null : acceptedRange(spec.package, pinned);
  const matches = installed === null || pinned === null || installed === "present" || acceptsVersion(spec.package, pinned, installed);
  return {
    package: spec.package,
    module: spec.module,
    required: spec.purpose === undefined,
    ...(spec.purpose === undefined ? {} : { purpose: spec.purpose }),
    installed,
    pinned,
    accepts,
    status: installed === null ? "missing" : matches ? "ok" : "mismatch",
  };
}

/** Checks an interpreter: Python version, the worker's packages against the lock's pins, CUDA. Never throws. */
export async function doctor(options: { python?: string } = {}): Promise<DoctorReport> {
  const textbrewer = packageVersion();
  const empty = { versions: {}, packages: [], cuda: null, warnings: [] };
  let resolved: ResolvedPython;
  try {
    resolved = resolvePython(options.python);
  } catch (e) {
    return { ok: false, textbrewer, python: "", source: "missing", ...empty, problems: [(e as Error).message] };
  }
  const problems: string[] = [];
  const r = await execa(resolved.python, ["-c", DOCTOR_SCRIPT], { reject: false, env: pythonEnv() });
  let info: { python: string; modules: Record<string, string | null>; cuda: DoctorReport["cuda"] } | undefined;
  if (r.exitCode === 0) {
    try {
      info = JSON.parse(String(r.stdout).trim().split("\n").pop()!);
    } catch {
      /* not Python, or a Python that printed something else */
    }
  }
  if (!info) {
    const name = resolved.source === "TEXTBREWER_PYTHON" ? `TEXTBREWER_PYTHON=${resolved.python}` : resolved.python;
    problems.push(`cannot run ${name}: ${runFailure(r as Parameters<typeof runFailure>[0])}; ${interpreterFix(resolved)}`);
    return { ok: false, textbrewer, python: resolved.python, source: resolved.source, ...empty, problems };
  }
  const [maj, min] = info.python.split(".").map(Number);
  if (maj! < MIN_PYTHON[0] || (maj === MIN_PYTHON[0] && min! < MIN_PYTHON[1])) {
    problems.push(`Python ${info.python} is too old; ${MIN_PYTHON.join(".")} or newer is needed`);
  }
  const pins = allPins();
  const packages = WORKER_PACKAGES.map((spec) => checkPackage(spec, info.modules[spec.module] ?? null, pins));
  const warnings: string[] = [];
  for (const p of packages) {
    const pin = p.pinned ? `${p.package}==${p.pinned}` : p.package;
    const fix =
      resolved.source === "managed"
        ? "run `npx textbrewer setup --force`"
        : `\`${resolved.python} -m pip install ${pin}\` (pins in python_worker/requirements.lock)`;
    if (p.status === "missing" && p.required) problems.push(`module '${p.module}' is missing: ${fix}`);
    if (p.status === "mismatch") {
      const line = `${p.package} ${p.installed} is not a version the worker accepts (${p.accepts}; pinned ${p.pinned}): ${fix}`;
      (p.required ? problems : warnings).push(p.required ? line : `${line} (optional: used for ${p.purpose})`);
    }
  }
  return {
    ok: problems.length === 0,
    textbrewer,
    python: resolved.python,
    source: resolved.source,
    versions: { python: info.python, ...info.modules },
    packages,
    cuda: info.cuda,
    problems,
    warnings,
  };
}

function packageLine(p: PackageCheck): string {
  const range = p.accepts ? `pinned ${p.pinned}, accepts ${p.accepts}` : "not pinned";
  const what = p.required ? range : `optional, for ${p.purpose}; ${range}`;
  const status = p.status === "ok" ? "ok" : p.status === "missing" ? (p.required ? "MISSING" : "not installed") : "MISMATCH";
  return `${p.package.padEnd(15)}${(p.installed ?? "-").padEnd(14)}${status.padEnd(14)}(${what})`;
}

export function formatDoctor(report: DoctorReport): string {
  const python = report.versions.python;
  const lines = [
    `textbrewer-ts  ${report.textbrewer} (Node ${process.versions.node})`,
    `interpreter    ${report.python || "(none)"}  [${report.source}]`,
    ...(python ? [`python         ${python.padEnd(14)}${"".padEnd(14)}(accepts ${MIN_PYTHON.join(".")} or newer)`] : []),
    ...report.packages.map(packageLine),
    `cuda           ${report.cuda ? (report.cuda.available ? `yes (CUDA ${report.cuda.version})` : "no (CPU only)") : "unknown"}`,
    ...(report.cuda?.devices.length ? report.cuda.devices.map((d, i) => `  device ${i}     ${d}`) : []),
    ...report.warnings.map((w) => `warning        ${w}`),
    report.ok ? "status         ok" : "status         PROBLEMS:",
    ...report.problems.map((p) => `  - ${p}`),
  ];
  return lines.join("\n");
}
