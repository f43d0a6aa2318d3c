/**
 * pythonia, for object-level calls that are rare and not on the training path (a user's tokenizer or metric,
 * inspecting a checkpoint before any worker exists). It runs its own short-lived interpreter of the same
 * environment. Guarded against its measured failure modes: it is imported lazily (importing it starts Python and
 * reads PYTHON_BIN at that moment), the interpreter is checked first (a bad PYTHON_BIN crashes Node uncatchably),
 * requests time out quickly, and python.exit() always runs (otherwise Node never exits). Never move tensors or
 * bytes through it: it serialises calls and moves data as JSON.
 */

import { createRequire } from "node:module";
import { execa } from "execa";
import { PythonEnvError, pythonEnv, resolvePython } from "../env/python-env.js";

const require = createRequire(import.meta.url);

/** The `python` function pythonia exports: `await python("json")` imports a module. Its types are loose. */
// biome-ignore lint/suspicious/noExplicitAny: pythonia proxies any Python object; callers read attributes of any name from it
export type PythonBridge = ((module: string) => Promise<any>) & { exit(): void };

export interface WithPythonOptions {
  /** Interpreter (default: as the worker resolves it). */
  python?: string;
  /** Per-request timeout; a call into a dead interpreter otherwise hangs this long. Default 30 s. */
  timeoutMs?: number;
}

let running = false;

function freshPythonia(): { python: PythonBridge } {
  // pythonia keeps its interpreter in module state; drop it from the require cache so each use starts clean.
  const dir = require.resolve("pythonia").replace(/index\.js$/, "");
  for (const key of Object.keys(require.cache)) if (key.startsWith(dir)) delete require.cache[key];
  return require("pythonia") as { python: PythonBridge };
}

/** Runs fn with a pythonia bridge bound to the worker's interpreter, and always shuts the interpreter down. */
export async function withPython<T>(fn: (python: PythonBridge) => Promise<T>, options: WithPythonOptions = {}): Promise<T> {
  if (running) throw new Error("withPython: calls are serialised by pythonia; await the previous withPython first");
  const { python: interpreter } = resolvePython(options.python);
  const check = await execa(interpreter, ["-c", "import sys"], { reject: false });
  if (check.exitCode !== 0)
    throw new PythonEnvError(`withPython: cannot run ${interpreter}: ${String(check.stderr || check.message).trim()}`);
  const env = pythonEnv({ PYTHON_BIN: interpreter, REQ_TIMEOUT: String(options.timeoutMs ?? 30_000) });
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  running = true;
  let bridge: PythonBridge | null = null;
  try {
    bridge = freshPythonia().python;
    return await fn(bridge);
  } catch (error) {
    throw asReadableError(error);
  } finally {
    bridge?.exit();
    running = false;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the pattern strips ANSI colour codes, which start with ESC
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * pythonia's errors carry the whole bridge trace: in the message (a failed call) or in the stack with an empty
 * message (a PythonException). The message becomes the Python error's last line; the trace stays in the stack.
 */
function asReadableError(error: unknown): Error {
  if (!(error instanceof Error)) return error as Error;
  if (error.message) {
    const plain = error.message.replace(ANSI, "");
    const last = /\*\*\* JS \*\*\*\s*(.+)$/m.exec(plain);
    if (!last) return error;
    const wrapped = new Error(last[1]!.trim());
    wrapped.stack = `${wrapped.name}: ${wrapped.message}\n--- Python ---\n${plain}`;
    return wrapped;
  }
  const text = String(error.stack ?? "");
  const lines = text
    .split("\n")
    .map((l) => l.replace(ANSI, "").trim())
    .filter(Boolean);
  const last = [...lines]
    .reverse()
    .find((l) => /^[A-Za-z_.]+(Error|Exception)\b.*:/.test(l) || /^\W*[A-Za-z_.]+(Error|Exception): /.test(l));
  const wrapped = new Error(last ? last.replace(/^\W+/, "") : text || "Python call failed");
  wrapped.stack = `${wrapped.name}: ${wrapped.message}\n--- Python ---\n${text}`;
  return wrapped;
}
