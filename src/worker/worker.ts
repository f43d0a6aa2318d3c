import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import * as zmq from "zeromq";
import { pythonEnv, resolvePython } from "../env/python-env.js";
import { Connection, type ReplyError } from "./connection.js";
import { WorkerClosedError, WorkerCrashedError, WorkerError, WorkerStartError } from "./errors.js";
import { type CreateModelOptions, createModelWith, type LoadModelOptions, loadModelWith, ModelHandle } from "./model-handle.js";
import { checkArgs, checkOpName, checkResult } from "./ops/check.js";
import type { OpName, OpResult } from "./ops/index.js";
import { endingOnSignal, type LiveWorker, trackWorker, untrackWorker } from "./signals.js";
import { StderrTail } from "./stderr-tail.js";
import { type LoadTokenizerOptions, TokenizerHandle } from "./tokenizer-handle.js";
import type { CallArgs, CallOptions, WorkerInfo, WorkerLink } from "./worker-link.js";

export type { CallArgs, CallOptions, WorkerInfo } from "./worker-link.js";

export type Device = "auto" | "cpu" | "cuda" | "mps" | `cuda:${number}`;

export interface WorkerOptions {
  /** Where models and batches live: "auto" picks CUDA when available. Default "auto". */
  device?: Device | string;
  /** Interpreter; default: TEXTBREWER_PYTHON, else the managed environment (`npx textbrewer setup`). */
  python?: string;
  /**
   * "ipc" (default: a socket in a private 0700 folder) or "tcp" (127.0.0.1, random port), or a full endpoint. A tcp
   * endpoint that is not a loopback address (`tcp://0.0.0.0:*`, `tcp://*:5555`, a LAN address) needs `curve: true`.
   */
  endpoint?: "ipc" | "tcp" | string;
  /**
   * Encrypt and authenticate the link with ZeroMQ CURVE, with keys made for this launch: the worker gets the
   * server's public key through its environment, and a peer that lacks it cannot complete the handshake, so none of
   * its bytes reach this process. Default false (the ipc folder and loopback tcp are local to this machine).
   */
  curve?: boolean;
  /**
   * The largest frame, in bytes, either side accepts: the JSON header or one tensor. A peer that sends a larger one
   * is disconnected by ZeroMQ before it is read, and neither side sends one (the call fails with ProtocolError
   * instead). Default 4 GiB; `Infinity` for no limit.
   */
  maxMessageSize?: number;
  /** How long to wait for the worker to connect (importing torch can take a while on a cold disk). Default 120 s. */
  startupTimeoutMs?: number;
  /** Copy the worker's stderr/stdout to this process's stderr (default: only when TEXTBREWER_WORKER_LOG=1). */
  echoOutput?: boolean;
  /** Extra environment variables for the worker. */
  env?: Record<string, string>;
  /**
   * Microseconds the worker busy-polls for the next request after each reply before it blocks. Waking from a
   * blocking poll takes tens of microseconds, a large share of a small request's round trip (figures under Performance in
   * the README, from `npm run bench:ipc` with BENCH_SPIN_US); spinning spends up to this much CPU per request. Training
   * steps keep requests queued, so it does not matter there. Default 0.
   */
  spinMicros?: number;
}

/** A Python worker process holding models; talk to it through its methods, end it with close() or `await using`. */
export class Worker implements WorkerLink, AsyncDisposable {
  readonly endpoint: string;
  readonly pid: number;
  info!: WorkerInfo;
  private readonly conn: Connection;
  private readonly child: ResultPromise;
  private readonly stderr: StderrTail;
  private readonly privateDir: string | null;
  private closing: Promise<void> | null = null;
  private crashed: WorkerCrashedError | null = null;
  private readonly exited: Promise<void>;
  private readonly live: LiveWorker;

  private constructor(parts: {
    endpoint: string;
    conn: Connection;
    child: ResultPromise;
    stderr: StderrTail;
    privateDir: string | null;
    exited: Promise<void>;
    live: LiveWorker;
  }) {
    this.endpoint = parts.endpoint;
    this.conn = parts.conn;
    this.child = parts.child;
    this.pid = parts.child.pid ?? -1;
    this.stderr = parts.stderr;
    this.privateDir = parts.privateDir;
    this.exited = parts.exited;
    this.live = parts.live;
  }

  static async start(options: WorkerOptions = {}): Promise<Worker> {
    const spinMicros = options.spinMicros ?? 0;
    if (!Number.isInteger(spinMicros) || spinMicros < 0) {
      throw new TypeError(`spinMicros: expected a non-negative integer of microseconds, got ${spinMicros}`);
    }
    const maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    if (maxMessageSize !== Infinity && (!Number.isSafeInteger(maxMessageSize) || maxMessageSize < 1024)) {
      throw new TypeError(
        `maxMessageSize: expected a whole number of bytes ≥ 1024 or Infinity, got ${maxMessageSize}; the default is ${DEFAULT_MAX_MESSAGE_SIZE} (4 GiB)`,
      );
    }
    const curve = options.curve ?? false;
    if (curve && !zmq.capability.curve) {
      throw new WorkerStartError(
        "curve: this build of zeromq has no CURVE support (zmq.capability.curve is false); use an ipc or loopback tcp endpoint",
      );
    }
    const kind = options.endpoint ?? "ipc";
    checkEndpoint(kind, curve);
    const { python } = resolvePython(options.python);
    const token = randomBytes(24).toString("hex");
    const keys = curve ? zmq.curveKeyPair() : null;
    const conn = new Connection(token, { maxMessageSize, ...(keys ? { curveSecretKey: keys.secretKey } : {}) });
    let privateDir: string | null = null;
    let endpoint: string;
    if (kind === "ipc") {
      privateDir = mkdtempSync(join(tmpdir(), "tbw-")); // mkdtemp creates it 0700
      endpoint = `ipc://${join(privateDir, "w.ipc")}`;
      if (endpoint.length - 6 > 107)
        throw new WorkerStartError(`ipc path too long for a Unix socket: ${endpoint}; set TMPDIR shorter or use endpoint "tcp"`);
    } else if (kind === "tcp") {
      endpoint = "tcp://127.0.0.1:*";
    } else {
      endpoint = kind;
    }
    try {
      endpoint = await conn.bind(endpoint);
    } catch (e) {
      conn.close();
      if (privateDir) rmSync(privateDir, { recursive: true, force: true });
      throw new WorkerStartError(`cannot bind ${endpoint}: ${(e as Error).message}`);
    }

    const echo = options.echoOutput ?? process.env.TEXTBREWER_WORKER_LOG === "1";
    const stderr = new StderrTail();
    const args = ["-m", "textbrewer_worker", "--endpoint", endpoint, "--device", options.device ?? "auto", "--spin-us", String(spinMicros)];
    args.push("--max-message-size", String(Number.isFinite(maxMessageSize) ? maxMessageSize : -1));
    if (privateDir) args.push("--private-dir", privateDir); // the worker removes it when its lifeline closes
    const secrets: Record<string, string> = { TEXTBREWER_WORKER_TOKEN: token };
    if (keys) secrets.TEXTBREWER_WORKER_CURVE_SERVER_KEY = keys.publicKey;
    const child = execa(python, args, {
      env: pythonEnv({ ...options.env, ...secrets }),
      stdin: "pipe", // the lifeline: the worker exits when this pipe closes
      stdout: "pipe",
      stderr: "pipe",
      buffer: false,
      reject: false,
      cleanup: false, // ./signals.ts ends the worker at exit and on SIGINT/SIGTERM
      forceKillAfterDelay: 3000,
    });
    child.stderr?.setEncoding("utf8");
    child.stdout?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      stderr.push(chunk);
      if (echo) process.stderr.write(chunk);
    });
    child.stdout?.on("data", (chunk: string) => {
      if (echo) process.stderr.write(chunk);
    });

    let worker: Worker | null = null;
    let exitDetails: WorkerCrashedError | null = null;
    const exited = child.then((result) => {
      exitDetails = new WorkerCrashedError({
        exitCode: result.exitCode ?? null,
        signal: result.signal ?? null,
        traceback: stderr.lastTraceback(),
        stderrTail: stderr.tail(20),
      });
      worker?.onExit(exitDetails);
      conn.fail(exitDetails);
    });

    const removePrivateDir = (): void => {
      if (privateDir) rmSync(privateDir, { recursive: true, force: true });
    };
    const live: LiveWorker = {
      endForSignal: async () => {
        conn.abandon();
        child.stdin?.end();
        if (!(await settlesWithin(exited, 2000))) child.kill("SIGKILL");
        await settlesWithin(exited, 2000);
        conn.close();
        removePrivateDir();
      },
      endNow: (signal) => {
        conn.abandon();
        child.kill(signal);
        removePrivateDir();
      },
    };
    trackWorker(live);

    const cleanupFailedStart = async (): Promise<void> => {
      child.kill("SIGKILL");
      await exited;
      conn.close();
      removePrivateDir();
      untrackWorker(live);
    };

    const timeoutMs = options.startupTimeoutMs ?? 120_000;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      conn.waitForHello().then(() => "ready" as const),
      exited.then(() => "exited" as const),
      new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (endingOnSignal()) return new Promise<never>(() => {}); // a rejection now would change the exit status
    if (outcome !== "ready") {
      await cleanupFailedStart();
      const why = outcome === "timeout" ? `did not connect within ${timeoutMs} ms` : "exited during startup";
      const details = exitDetails as WorkerCrashedError | null;
      throw new WorkerStartError(
        `the Python worker (${python}) ${why}` +
          (details ? ` (${details.signal ? `signal ${details.signal}` : `exit code ${details.exitCode}`})` : "") +
          (stderr.tail(30).length ? `\n--- worker stderr ---\n${stderr.tail(30).join("\n")}` : "") +
          "\nRun `npx textbrewer doctor` to check the Python environment.",
      );
    }
    worker = new Worker({ endpoint, conn, child, stderr, privateDir, exited, live });
    try {
      worker.info = await worker.call("info");
    } catch (e) {
      await worker.close();
      throw e;
    }
    return worker;
  }

  /**
   * Sends one request of the op catalogue (src/worker/ops/); resolves with its result, typed and checked (tensors as
   * Tensor), rejects with WorkerError / WorkerCrashedError. An unknown op, args that do not fit the op's schema and
   * values that cannot travel reject with ProtocolError before anything is sent (missing args with a default get it);
   * a result that does not fit the op's schema rejects with ProtocolError naming the op and the field. NaN and
   * ±Infinity travel.
   */
  async call<N extends OpName>(op: N, ...[args, options]: CallArgs<N>): Promise<OpResult<N>> {
    checkOpName(op);
    const result = await this.send(op, checkArgs(op, args ?? {}), options);
    return checkResult(op, result);
  }

  /**
   * Sends `op` and `args` as they are, without the catalogue: no args check, no defaults, the result unchecked and
   * untyped. For an op of your own that Python code registered in the worker (`@op("name")`), and for testing the wire.
   */
  async callUnchecked(op: string, args: Record<string, unknown> = {}, options: CallOptions = {}): Promise<unknown> {
    return this.send(op, args, options);
  }

  private async send(op: string, args: Record<string, unknown>, options: CallOptions = {}): Promise<unknown> {
    if (endingOnSignal()) return new Promise<never>(() => {}); // the process is about to end on SIGINT/SIGTERM
    if (this.crashed) throw this.crashed;
    if (this.closing) throw new WorkerClosedError();
    options.signal?.throwIfAborted();
    try {
      const reply = await this.conn.request(op, args);
      return reply.result;
    } catch (e) {
      const err = e as ReplyError;
      if (err.info) throw new WorkerError(op, err.info);
      throw e;
    }
  }

  /**
   * Seeds the worker's random generators (Python, numpy, torch), so that weights created next are reproducible: the
   * new head that loadModel adds for another number of labels, or a model from createModel without initFrom.
   * (train() seeds again from TrainingConfig.seed when it starts.)
   */
  async seed(seed: number): Promise<void> {
    await this.call("seed", { seed });
  }

  /**
   * Calls a Python function of yours in the worker: `ref` is "path/to/file.py:function" (relative to the worker's
   * working directory) or "package.module:function"; it gets `args` as keyword arguments, Tensors arriving as torch
   * tensors, and its result comes back the same way (torch tensors as Tensors, the rest as JSON). Each file is
   * imported once per worker. For evaluation or preprocessing that is simplest in Python.
   */
  async runPython(ref: string, args: Record<string, unknown> = {}, options: CallOptions = {}): Promise<unknown> {
    return this.call("call_python", { ref, args }, options);
  }

  /** Loads a checkpoint into the worker (see LoadModelOptions for the formats). */
  async loadModel(options: LoadModelOptions): Promise<ModelHandle> {
    return loadModelWith(options, async (args) => new ModelHandle(await this.call("load_model", args), this));
  }

  /** Builds a model from a Hugging Face config, optionally initialised from another model's layers. */
  async createModel(options: CreateModelOptions): Promise<ModelHandle> {
    return createModelWith(options, async (args) => new ModelHandle(await this.call("create_model", args), this));
  }

  /** Loads a Hugging Face fast tokenizer from a local folder (tokenizer.json or a vocabulary); no downloads. */
  async loadTokenizer(path: string, options: LoadTokenizerOptions = {}): Promise<TokenizerHandle> {
    const description = await this.call("load_tokenizer", { path, trustRemoteCode: options.trustRemoteCode });
    return new TokenizerHandle(description, this);
  }

  /** The last lines the worker wrote to stderr (warnings, prints from user code). */
  recentStderr(lines = 20): string[] {
    return this.stderr.tail(lines);
  }

  /** Milliseconds since the worker's last heartbeat (it beats every second, also while busy in torch). */
  get heartbeatAgeMs(): number {
    return this.conn.lastHeartbeat ? Date.now() - this.conn.lastHeartbeat : Infinity;
  }

  get alive(): boolean {
    return !this.crashed && !this.closing;
  }

  private onExit(details: WorkerCrashedError): void {
    if (!this.closing) this.crashed = details;
  }

  /** Asks the worker to finish, then SIGTERM, then SIGKILL; frees the socket and the private folder. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (!this.crashed) {
      const ask = this.conn.request("shutdown").catch(() => undefined);
      await Promise.race([ask, new Promise((r) => setTimeout(r, 2000))]);
      const gone = await Promise.race([this.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 3000))]);
      if (!gone) this.child.kill("SIGTERM"); // forceKillAfterDelay sends SIGKILL 3 s later
    }
    this.child.stdin?.end();
    await this.exited;
    this.conn.fail(new WorkerClosedError());
    this.conn.close();
    if (this.privateDir) rmSync(this.privateDir, { recursive: true, force: true });
    untrackWorker(this.live);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** 4 GiB: a frame is a header or one tensor, and models stay in the worker, so real frames are far smaller. */
export const DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 ** 3;

const LOOPBACK_HOST = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[?::1\]?|lo)$/;

/** Whether a tcp endpoint's host is this machine's loopback (other machines cannot reach it). */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOST.test(host);
}

/** Refuses a plain tcp endpoint that other machines could reach: the token would cross the network in clear. */
function checkEndpoint(endpoint: string, curve: boolean): void {
  const tcp = /^tcp:\/\/(.*):([^:\]]+)$/.exec(endpoint);
  if (!tcp || curve) return;
  const host = tcp[1]!.replace(/^.*;/, ""); // "tcp://source;host:port" binds host
  if (!LOOPBACK_HOST.test(host)) {
    throw new WorkerStartError(
      `endpoint: '${endpoint}' is not a loopback address, and without encryption the launch token and every tensor would cross the network in clear; pass curve: true, or bind tcp://127.0.0.1:* (endpoint: "tcp")`,
    );
  }
}

function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
