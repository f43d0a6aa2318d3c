/**
 * The teacher as a service: teachers loaded in a worker process of their own, which students' workers read directly
 * (worker to worker). The script that starts it only controls it; teacher outputs never pass through a script.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zmq from "zeromq";
import type { z } from "zod";
import { type Adaptor, type AdaptorSpec, toAdaptorSpec } from "../adaptor/index.js";
import { ConfigError, type ConfigProblem } from "../config/errors.js";
import { SparseSupport, SparseTail, type TeacherServiceLinkInput } from "../train/plan.js";
import type { LoadModelOptions, ModelHandle } from "../worker/model-handle.js";
import type { serviceStats } from "../worker/ops/service.js";
import { isLoopbackHost, Worker, type WorkerOptions } from "../worker/worker.js";
import { TeacherServiceError } from "./errors.js";
import type { ServedTeachers } from "./served-teachers.js";

export type TeacherServiceStats = z.output<typeof serviceStats>;

/** The float dtype teacher outputs travel in; the student reads them as float32. */
export type ServiceDType = "float32" | "bfloat16" | "float16";

export interface TeacherServiceOptions {
  /** The teachers, loaded in the service's worker as `worker.loadModel(options)` does; or `model` for one. */
  models?: LoadModelOptions[];
  model?: LoadModelOptions;
  /** One adaptor for every teacher, or one per teacher; applied on the service side. */
  adaptorT: Adaptor | Adaptor[];
  /** The service worker's device (default "auto"). */
  device?: WorkerOptions["device"];
  /**
   * Where students' workers connect: "ipc" (default: a socket in a private 0700 folder, this machine only), "tcp"
   * (127.0.0.1, a free port), or a full endpoint. A tcp address other machines can reach needs `curve`.
   */
  endpoint?: "ipc" | "tcp" | string;
  /**
   * Encrypt and authenticate with ZeroMQ CURVE: the service's key pair is made at start (`publicKey` below), and only
   * the listed client public keys (z85, from `zmq.curveKeyPair()`) may connect; `service.client()` adds its own.
   */
  curve?: { clientKeys?: string[] };
  /** Rows of one teacher forward shared by requests of different students, at most (0: never shared). Default 64. */
  maxBatchRows?: number;
  /**
   * The teachers' forward under autocast to bfloat16 or float16 (default "no": their own dtype). A device that cannot
   * autocast to it serves in float32, with a warning.
   */
  mixedPrecision?: "no" | "bf16" | "fp16";
  /** The service worker's interpreter, environment, startup limit and output echo (as Worker.start). */
  python?: string;
  env?: Record<string, string>;
  startupTimeoutMs?: number;
  echoOutput?: boolean;
}

export interface ClientOptions {
  /** The dtype teacher outputs travel in (default float32; bfloat16/float16 halve the bytes). */
  dtype?: ServiceDType;
  /** The longest wait for one reply before the step fails with TeacherServiceError (default 60 s). */
  timeoutMs?: number;
  /** Requests sent ahead while the student trains (default 2). */
  window?: number;
  /**
   * Send the KD targets as the teachers' top-k log-probabilities at the KD temperature (ids int32, values float32)
   * instead of dense logits: for large vocabularies. The student learns from them as from a teacher cache with
   * `topK` (the same sparse losses, `tail` and `support`); matched features still travel dense, at `dtype`.
   */
  topK?: number;
  /** With topK: how the teacher's missing mass is completed (as the teacher cache's `tail`; default "ignore"). */
  tail?: z.output<typeof SparseTail>;
  /** With topK and a token loss: the teacher's top-k ("teacher", default) or its union with the student's ("both"). */
  support?: z.output<typeof SparseSupport>;
}

export interface ConnectOptions extends ClientOptions {
  endpoint: string;
  /** Without CURVE (ipc, loopback tcp): the service's token (`service.token`). */
  token?: string;
  /** With CURVE: the service's public key, and this client's key pair (its public key allow-listed there). */
  serverKey?: string;
  keyPair?: { publicKey: string; secretKey: string };
}

const SERVICE = "TeacherService.start";

/** A teacher service: start it, pass it (or a connection to it) where a distiller takes a teacher, close it. */
export class TeacherService implements ServedTeachers, AsyncDisposable {
  readonly kind = "teacher-service";
  /** Sent with each request on ipc / loopback tcp links. */
  readonly token: string;

  private constructor(
    private readonly worker: Worker,
    readonly endpoint: string,
    token: string,
    readonly adaptorT: readonly AdaptorSpec[],
    readonly teacherModels: readonly ModelHandle[],
    /** The service's CURVE public key (what a remote client passes as serverKey); null without CURVE. */
    readonly publicKey: string | null,
    private readonly privateDir: string | null,
  ) {
    this.token = token;
  }

  static async start(options: TeacherServiceOptions): Promise<TeacherService> {
    const o = checkOptions(options);
    if (o.curve && !zmq.capability.curve) {
      throw new ConfigError(SERVICE, [
        { path: "curve", kind: "invalid_value", message: "this build of zeromq has no CURVE support; serve on ipc or loopback tcp" },
      ]);
    }
    const worker = await Worker.start({
      ...(options.device !== undefined ? { device: options.device } : {}),
      ...(options.python !== undefined ? { python: options.python } : {}),
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(options.startupTimeoutMs !== undefined ? { startupTimeoutMs: options.startupTimeoutMs } : {}),
      ...(options.echoOutput !== undefined ? { echoOutput: options.echoOutput } : {}),
    });
    let privateDir: string | null = null;
    try {
      const teachers = [];
      for (const m of o.models) teachers.push(await worker.loadModel(m));
      let endpoint = o.endpoint;
      if (endpoint === "ipc") {
        privateDir = mkdtempSync(join(tmpdir(), "tbs-")); // made 0700: only this user reaches the socket
        endpoint = `ipc://${join(privateDir, "teacher.ipc")}`;
      } else if (endpoint === "tcp") {
        endpoint = "tcp://127.0.0.1:*";
      }
      const token = randomBytes(24).toString("hex");
      const keys = o.curve ? zmq.curveKeyPair() : null;
      const started = await worker.call("teacher_service_start", {
        teachers: teachers.map((t) => t.id),
        adaptors: o.adaptorT,
        endpoint,
        token,
        curve: keys ? { publicKey: keys.publicKey, secretKey: keys.secretKey, clientKeys: o.curve?.clientKeys ?? [] } : null,
        maxBatchRows: o.maxBatchRows,
        mixedPrecision: o.mixedPrecision,
      });
      for (const warning of started.warnings) console.warn(`textbrewer-ts: teacher service: ${warning}`);
      return new TeacherService(worker, started.endpoint, token, o.adaptorT, teachers, keys?.publicKey ?? null, privateDir);
    } catch (e) {
      await worker.close();
      if (privateDir) rmSync(privateDir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * A connection to a service started elsewhere (another script or machine): asks the service what it serves and
   * fails with TeacherServiceError within `timeoutMs` when it is unreachable or refuses this client's key.
   */
  static async connect(options: ConnectOptions): Promise<TeacherConnection> {
    const curve = options.serverKey !== undefined || options.keyPair !== undefined;
    if (curve && !(options.serverKey && options.keyPair)) {
      throw new ConfigError("TeacherService.connect", [
        {
          path: curve && !options.serverKey ? "serverKey" : "keyPair",
          kind: "invalid_value",
          message: "CURVE needs both serverKey (the service's publicKey) and keyPair (this client's, allow-listed by the service)",
        },
      ]);
    }
    if (!curve && !options.token) {
      throw new ConfigError("TeacherService.connect", [
        {
          path: "token",
          kind: "invalid_value",
          message: "missing: without CURVE give the service's token (service.token), or use serverKey and keyPair",
        },
      ]);
    }
    const timeoutMs = options.timeoutMs ?? 60_000;
    const credentials: Credentials = {
      token: options.token ?? "curve-authenticated-link",
      serverKey: options.serverKey ?? null,
      publicKey: options.keyPair?.publicKey ?? null,
      secretKey: options.keyPair?.secretKey ?? null,
    };
    const described = await describe(options.endpoint, credentials, Math.min(timeoutMs, 10_000));
    return new TeacherConnection(options.endpoint, described.adaptors, null, async () => credentials, options);
  }

  get teacherCount(): number {
    return this.adaptorT.length;
  }

  /** The service worker's process id. */
  get pid(): number {
    return this.worker.pid;
  }

  /** A connection with its own options (dtype, window, timeout); with CURVE it gets a key pair of its own. */
  client(options: ClientOptions = {}): TeacherConnection {
    return new TeacherConnection(this.endpoint, this.adaptorT, this.teacherModels, () => this.credentials(), options);
  }

  link(): Promise<TeacherServiceLinkInput> {
    return this.client().link();
  }

  /** Requests answered, forwards run, busy and idle time of the serving thread, clients seen. */
  stats(): Promise<TeacherServiceStats> {
    return this.worker.call("teacher_service_stats");
  }

  /** Stops serving and ends the worker; students still connected fail their next step with TeacherServiceError. */
  async close(): Promise<void> {
    if (this.worker.alive) await this.worker.call("teacher_service_stop").catch(() => undefined);
    await this.worker.close();
    if (this.privateDir) rmSync(this.privateDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async credentials(): Promise<Credentials> {
    if (this.publicKey === null) return { token: this.token, serverKey: null, publicKey: null, secretKey: null };
    const keys = zmq.curveKeyPair();
    await this.worker.call("teacher_service_allow", { publicKey: keys.publicKey });
    return { token: this.token, serverKey: this.publicKey, publicKey: keys.publicKey, secretKey: keys.secretKey };
  }
}

interface Credentials {
  token: string;
  serverKey: string | null;
  publicKey: string | null;
  secretKey: string | null;
}

/** Teachers served by a service, with the options of this client's links. */
export class TeacherConnection implements ServedTeachers {
  readonly kind = "teacher-service";

  constructor(
    readonly endpoint: string,
    readonly adaptorT: readonly AdaptorSpec[],
    readonly teacherModels: readonly ModelHandle[] | null,
    private readonly credentials: () => Promise<Credentials>,
    private readonly options: ClientOptions,
  ) {
    checkClientOptions(options);
  }

  get teacherCount(): number {
    return this.adaptorT.length;
  }

  async link(): Promise<TeacherServiceLinkInput> {
    const c = await this.credentials();
    return {
      endpoint: this.endpoint,
      ...c,
      teachers: this.teacherCount,
      ...(this.options.dtype !== undefined ? { dtype: this.options.dtype } : {}),
      ...(this.options.timeoutMs !== undefined ? { timeoutMs: this.options.timeoutMs } : {}),
      ...(this.options.window !== undefined ? { window: this.options.window } : {}),
      ...(this.options.topK !== undefined ? { topK: this.options.topK } : {}),
      ...(this.options.tail !== undefined ? { tail: this.options.tail } : {}),
      ...(this.options.support !== undefined ? { support: this.options.support } : {}),
    };
  }
}

interface CheckedOptions {
  mixedPrecision: "no" | "bf16" | "fp16";
  models: LoadModelOptions[];
  adaptorT: AdaptorSpec[];
  endpoint: string;
  curve: { clientKeys?: string[] } | null;
  maxBatchRows: number;
}

const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

function checkOptions(options: TeacherServiceOptions): CheckedOptions {
  const problems: ConfigProblem[] = [];
  const bad = (path: string, message: string): void => {
    problems.push({ path, kind: "invalid_value", message });
  };
  const known = new Set([
    "models",
    "model",
    "adaptorT",
    "device",
    "endpoint",
    "curve",
    "maxBatchRows",
    "mixedPrecision",
    "python",
    "env",
    "startupTimeoutMs",
    "echoOutput",
  ]);
  for (const key of Object.keys(options)) {
    if (!known.has(key))
      problems.push({ path: key, kind: "unknown_key", message: `unknown option '${key}'; allowed: ${[...known].join(", ")}` });
  }
  if ((options.models === undefined) === (options.model === undefined)) {
    bad("models", "give the teachers as models: [LoadModelOptions, ...], or one as model: LoadModelOptions (not both)");
  }
  const models = options.models ?? (options.model ? [options.model] : []);
  if (options.models !== undefined && !options.models.length) bad("models", "[]: give at least one teacher");
  let adaptorT: AdaptorSpec[] = [];
  if (options.adaptorT === undefined) bad("adaptorT", "missing: the teacher adaptor (one, or one per teacher) runs in the service");
  else {
    const list = Array.isArray(options.adaptorT) ? options.adaptorT : models.map(() => options.adaptorT as Adaptor);
    if (list.length !== models.length)
      bad("adaptorT", `${list.length} adaptors for ${models.length} teachers; give one, or one per teacher`);
    adaptorT = list.map((a) => toAdaptorSpec(a));
  }
  const endpoint = options.endpoint ?? "ipc";
  const curve = options.curve ?? null;
  const tcp = /^tcp:\/\/(.*):([^:\]]+)$/.exec(endpoint);
  if (endpoint !== "ipc" && endpoint !== "tcp" && !tcp && !endpoint.startsWith("ipc://")) {
    bad("endpoint", `'${endpoint}': expected "ipc", "tcp", "ipc://path" or "tcp://host:port"`);
  } else if (tcp && !curve && !isLoopbackHost(tcp[1]!.replace(/^.*;/, ""))) {
    bad(
      "endpoint",
      `'${endpoint}' is not a loopback address, and without encryption the token and every tensor would cross the network in clear; pass curve: { clientKeys: [...] } (the students' public keys from zmq.curveKeyPair()), or bind "tcp" (127.0.0.1)`,
    );
  }
  for (const [i, key] of (curve?.clientKeys ?? []).entries()) {
    if (typeof key !== "string" || !Z85_KEY.test(key))
      bad(`curve.clientKeys[${i}]`, `'${String(key)}' is not a z85 public key (40 characters, from zmq.curveKeyPair())`);
  }
  const maxBatchRows = options.maxBatchRows ?? 64;
  if (!Number.isInteger(maxBatchRows) || maxBatchRows < 0)
    bad("maxBatchRows", `${maxBatchRows}: expected a whole number ≥ 0 (0: requests never share a forward)`);
  const mixedPrecision = options.mixedPrecision ?? "no";
  if (!["no", "bf16", "fp16"].includes(mixedPrecision)) bad("mixedPrecision", `'${mixedPrecision}': expected "no", "bf16" or "fp16"`);
  if (problems.length) throw new ConfigError(SERVICE, problems);
  return { models, adaptorT, endpoint, curve, maxBatchRows, mixedPrecision };
}

function checkClientOptions(o: ClientOptions): void {
  const problems: ConfigProblem[] = [];
  if (o.dtype !== undefined && !["float32", "bfloat16", "float16"].includes(o.dtype)) {
    problems.push({ path: "dtype", kind: "invalid_value", message: `'${o.dtype}': expected float32, bfloat16 or float16` });
  }
  if (o.timeoutMs !== undefined && !(Number.isInteger(o.timeoutMs) && o.timeoutMs >= 1)) {
    problems.push({ path: "timeoutMs", kind: "invalid_value", message: `${o.timeoutMs}: expected a whole number of milliseconds ≥ 1` });
  }
  if (o.window !== undefined && !(Number.isInteger(o.window) && o.window >= 1 && o.window <= 16)) {
    problems.push({ path: "window", kind: "invalid_value", message: `${o.window}: expected a whole number from 1 to 16` });
  }
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 1)) {
    problems.push({
      path: "topK",
      kind: "invalid_value",
      message: `${o.topK}: expected a whole number ≥ 1 (leave it out for dense logits)`,
    });
  }
  for (const [key, allowed] of [
    ["tail", SparseTail.options],
    ["support", SparseSupport.options],
  ] as const) {
    if (o[key] !== undefined && !(allowed as readonly string[]).includes(o[key]))
      problems.push({ path: key, kind: "invalid_value", message: `'${o[key]}': expected ${allowed.join(", ")}` });
    else if (o[key] !== undefined && o.topK === undefined)
      problems.push({
        path: key,
        kind: "invalid_value",
        message: `'${o[key]}' applies to top-k targets only; give topK too, or leave ${key} out`,
      });
  }
  if (problems.length) throw new ConfigError("teacher service client", problems);
}

/** Asks a service what it serves (no tensors), failing clearly on a refused key, a closed link or a timeout. */
async function describe(endpoint: string, c: Credentials, timeoutMs: number): Promise<{ teachers: number; adaptors: AdaptorSpec[] }> {
  const sock = new zmq.Dealer({
    linger: 0,
    ...(c.serverKey ? { curveServerKey: c.serverKey, curvePublicKey: c.publicKey!, curveSecretKey: c.secretKey! } : {}),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const refused = (async (): Promise<never> => {
      for await (const event of sock.events) {
        if (event.type === "handshake:error:auth")
          throw new TeacherServiceError(
            endpoint,
            `the teacher service at ${endpoint} refused this client's CURVE key: it is not on the service's allow-list (curve.clientKeys)`,
          );
        if (event.type === "handshake:error:protocol" || event.type === "handshake:error:other") {
          throw new TeacherServiceError(
            endpoint,
            `the CURVE handshake with the teacher service at ${endpoint} failed: check serverKey (the service's publicKey)`,
          );
        }
      }
      return new Promise<never>(() => {});
    })();
    refused.catch(() => undefined);
    sock.connect(endpoint);
    await sock.send(JSON.stringify({ op: "describe", id: 1, token: c.token, body: null, tensors: [] }));
    const reply = (async () => {
      const [frame] = await sock.receive();
      return JSON.parse(frame!.toString("utf8")) as { ok: boolean; error?: string; body?: { teachers: number; adaptors: AdaptorSpec[] } };
    })();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TeacherServiceError(
              endpoint,
              `the teacher service at ${endpoint} did not answer within ${timeoutMs} ms; is it running and reachable (and serverKey right)?`,
            ),
          ),
        timeoutMs,
      );
    });
    const r = await Promise.race([reply, refused, timeout]);
    if (!r.ok || !r.body)
      throw new TeacherServiceError(endpoint, `the teacher service at ${endpoint} refused: ${r.error ?? "no description"}`);
    return r.body;
  } finally {
    clearTimeout(timer);
    sock.close();
  }
}
