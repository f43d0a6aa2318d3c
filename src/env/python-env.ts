/** The worker's Python environment: find it, build it (`textbrewer setup`), check it (`textbrewer doctor`). */

import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { execa } from "execa";
import {
  cacheRoot,
  completeMarker,
  devRequirementsFile,
  noDepsRequirementsFile,
  requirementsFile,
  requirementsHash,
  toolsEnvDir,
  venvDir,
  venvPython,
  workerSourceDir,
} from "./paths.js";

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
  if (existsSync(noDepsRequirementsFile())) installs.push(["--no-deps", "-r", noDepsRequirementsFile()]);
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

export interface DoctorReport {
  ok: boolean;
  python: string;
  source: ResolvedPython["source"] | "missing";
  versions: Record<string, string | null>;
  cuda: { available: boolean; version: string | null; devices: string[] } | null;
  problems: string[];
}

const REQUIRED_MODULES = ["torch", "transformers", "safetensors", "zmq", "numpy", "fastjsonschema"] as const;

const DOCTOR_SCRIPT = `
import importlib, json, sys
out = {"python": sys.version.split()[0], "executable": sys.executable, "modules": {}, "cuda": None}
for name in ${JSON.stringify(REQUIRED_MODULES)} + ["tensorboard", "ot"]:
    try:
        m = importlib.import_module(name)
        out["modules"][name] = getattr(m, "__version__", "present")
    except Exception as e:
        out["modules"][name] = None
try:
    import torch
    out["cuda"] = {"available": torch.cuda.is_available(), "version": torch.version.cuda,
                   "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
except Exception:
    pass
print(json.dumps(out))
`;

/** Checks an interpreter: Python version, required modules, CUDA. Never throws. */
export async function doctor(options: { python?: string } = {}): Promise<DoctorReport> {
  let resolved: ResolvedPython;
  try {
    resolved = resolvePython(options.python);
  } catch (e) {
    return { ok: false, python: "", source: "missing", versions: {}, cuda: null, problems: [(e as Error).message] };
  }
  const problems: string[] = [];
  const r = await execa(resolved.python, ["-c", DOCTOR_SCRIPT], { reject: false, env: pythonEnv() });
  if (r.exitCode !== 0 || typeof r.stdout !== "string") {
    problems.push(`cannot run ${resolved.python}: ${String(r.stderr || r.message).trim()}`);
    return { ok: false, python: resolved.python, source: resolved.source, versions: {}, cuda: null, problems };
  }
  const info = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
    python: string;
    modules: Record<string, string | null>;
    cuda: DoctorReport["cuda"];
  };
  const [maj, min] = info.python.split(".").map(Number);
  if (maj! < MIN_PYTHON[0] || (maj === MIN_PYTHON[0] && min! < MIN_PYTHON[1])) {
    problems.push(`Python ${info.python} is too old; ${MIN_PYTHON.join(".")} or newer is needed`);
  }
  for (const m of REQUIRED_MODULES) {
    if (!info.modules[m]) {
      const pkg = m === "zmq" ? "pyzmq" : m;
      problems.push(
        resolved.source === "managed"
          ? `module '${m}' is missing from the managed environment: run \`npx textbrewer setup --force\``
          : `module '${m}' is missing: \`${resolved.python} -m pip install ${pkg}\` (pinned versions in python_worker/requirements.lock)`,
      );
    }
  }
  return {
    ok: problems.length === 0,
    python: resolved.python,
    source: resolved.source,
    versions: { python: info.python, ...info.modules },
    cuda: info.cuda,
    problems,
  };
}

export function formatDoctor(report: DoctorReport): string {
  const lines = [
    `interpreter   ${report.python || "(none)"}  [${report.source}]`,
    ...Object.entries(report.versions).map(([k, v]) => `${k.padEnd(13)} ${v ?? "MISSING"}`),
    `cuda          ${report.cuda ? (report.cuda.available ? `yes (CUDA ${report.cuda.version})` : "no (CPU only)") : "unknown"}`,
    ...(report.cuda?.devices.length ? report.cuda.devices.map((d, i) => `  device ${i}    ${d}`) : []),
    report.ok ? "status        ok" : "status        PROBLEMS:",
    ...report.problems.map((p) => `  - ${p}`),
  ];
  return lines.join("\n");
}
