import type { ErrorInfo } from "./protocol.js";

/** A request the worker answered with an error; the worker is still serving. */
export class WorkerError extends Error {
  override readonly name = "WorkerError";
  readonly pythonType: string;
  readonly pythonMessage: string;
  readonly traceback: string;
  readonly op: string;
  /** The global rank that answered with the error, in a WorkerGroup. */
  readonly rank: number | null;

  constructor(op: string, info: ErrorInfo, rank?: number) {
    super(`${op}${rank === undefined ? "" : ` (rank ${rank})`}: ${info.type}: ${info.message}`);
    this.op = op;
    this.rank = rank ?? null;
    this.pythonType = info.type;
    this.pythonMessage = info.message;
    this.traceback = info.traceback;
  }
}

export interface CrashDetails {
  exitCode: number | null;
  signal: string | null;
  /** The last Python traceback printed on stderr, if any. */
  traceback: string | null;
  stderrTail: string[];
  /** The global rank of the process that died, in a WorkerGroup. */
  rank?: number;
}

/** The worker process died; every pending and later call rejects with this. */
export class WorkerCrashedError extends Error {
  override readonly name = "WorkerCrashedError";
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly traceback: string | null;
  readonly stderrTail: string[];
  readonly rank: number | null;

  constructor(details: CrashDetails) {
    const how = details.signal ? `was killed by ${details.signal}` : `exited with code ${details.exitCode}`;
    const tail = details.stderrTail.length ? `\n--- last stderr lines ---\n${details.stderrTail.join("\n")}` : "";
    const tb = details.traceback && !tail.includes(details.traceback) ? `\n--- Python traceback ---\n${details.traceback}` : "";
    const who = details.rank === undefined ? "the Python worker" : `rank ${details.rank} of the worker group`;
    super(`${who} ${how}${tb}${tail}`);
    this.rank = details.rank ?? null;
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.traceback = details.traceback;
    this.stderrTail = details.stderrTail;
  }
}

/** The worker could not be started (interpreter missing, handshake timed out, …). */
export class WorkerStartError extends Error {
  override readonly name = "WorkerStartError";
}

/** The worker was closed by this process; calls after close() reject with this. */
export class WorkerClosedError extends Error {
  override readonly name = "WorkerClosedError";
  constructor() {
    super("the worker is closed");
  }
}

/**
 * A message that cannot travel on the wire. `direction: "request"`: call() refused to send it (the op or args are
 * not valid; nothing reached the worker). `direction: "reply"`: the worker answered with something this side
 * cannot decode; the message quotes the reply's start. The worker is still running in both cases.
 */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    message: string,
    readonly direction: "request" | "reply",
  ) {
    super(message);
  }
}
