/**
 * The TypeScript end of the ZeroMQ link. Node binds a ROUTER; the worker's two DEALERs (requests, heartbeats)
 * connect and each proves the per-launch token in its first message. Only the peers that proved it are ever
 * addressed — a bound DEALER would round-robin requests over any process that connected to a tcp port — and only
 * their messages are ever decoded: anything else is counted and dropped by its size and routing id alone.
 */
import { timingSafeEqual } from "node:crypto";
import * as zmq from "zeromq";
import { Tensor } from "../tensor/tensor.js";
import { ProtocolError } from "./errors.js";
import { type ErrorInfo, Heartbeat, Hello, MAX_OP_LENGTH, PROTOCOL_VERSION, Reply, type TensorMeta } from "./protocol.js";
import { decodeValue, encodeValue } from "./wire.js";

/** A hello is about 130 bytes; a stranger's message larger than this is dropped without being read. */
const HELLO_MAX_BYTES = 512;
/** Routing ids of strangers whose hello failed, remembered (up to this many) so later messages skip even the parse. */
const MAX_REFUSED_PEERS = 4096;
/** The read loop lets timers and I/O run after this many messages in a row, so a flood cannot hold the event loop. */
const MESSAGES_PER_TURN = 256;

export interface ConnectionOptions {
  /** Largest frame (header or tensor) either side accepts; a peer that sends a larger one is disconnected by ZeroMQ. */
  maxMessageSize: number;
  /** With a CURVE secret key the ROUTER is a CURVE server: the link is encrypted and peers must know its public key. */
  curveSecretKey?: string;
}

/** What was dropped from peers that had not proved the token (never decoded). */
export interface DroppedStats {
  messages: number;
  bytes: number;
}

/** The start of a message, printable, for error messages. */
export function quoteStart(bytes: Buffer, max = 160): string {
  const head = bytes.subarray(0, max).toString("utf8");
  return JSON.stringify(head) + (bytes.length > max ? ` … (${bytes.length} bytes)` : "");
}

export interface RawReply {
  result: unknown;
}

interface Pending {
  op: string;
  resolve: (value: RawReply) => void;
  reject: (error: Error) => void;
}

export type ReplyError = Error & { info: ErrorInfo; op: string };

export class Connection {
  private readonly router: zmq.Router;
  private readonly token: Buffer;
  private readonly maxMessageSize: number;
  private readonly refusedPeers = new Set<string>();
  readonly dropped: DroppedStats = { messages: 0, bytes: 0 };
  private mainPeer: Buffer | null = null;
  private heartbeatPeer: Buffer | null = null;
  private readonly pending = new Map<number, Pending>();
  private readonly writeQueue: Array<{ frames: (Buffer | Uint8Array | string)[]; onError: (e: Error) => void }> = [];
  private writing = false;
  private nextId = 1;
  private failure: Error | null = null;
  private helloWaiters: Array<(peer: number) => void> = [];
  lastHeartbeat = 0;
  workerPid = 0;

  constructor(token: string, options: ConnectionOptions) {
    this.token = Buffer.from(token);
    this.maxMessageSize = options.maxMessageSize;
    this.router = new zmq.Router({
      linger: 0,
      mandatory: true,
      sendHighWaterMark: 0,
      receiveHighWaterMark: 0,
      maxMessageSize: Number.isFinite(options.maxMessageSize) ? options.maxMessageSize : -1,
      ...(options.curveSecretKey ? { curveServer: true, curveSecretKey: options.curveSecretKey } : {}),
    });
  }

  async bind(endpoint: string): Promise<string> {
    await this.router.bind(endpoint);
    void this.readLoop();
    return this.router.lastEndpoint ?? endpoint;
  }

  /** Resolves once the worker's request socket has proved the token. */
  waitForHello(): Promise<number> {
    if (this.mainPeer) return Promise.resolve(this.workerPid);
    return new Promise((resolve) => this.helloWaiters.push(resolve));
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  request(op: string, args: Record<string, unknown> = {}): Promise<RawReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.mainPeer) return Promise.reject(new Error("the worker has not connected yet"));
    let message: { header: string; frames: Uint8Array[] };
    const id = this.nextId;
    try {
      message = this.encodeRequest(id, op, args);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    this.nextId++;
    return new Promise<RawReply>((resolve, reject) => {
      this.pending.set(id, { op, resolve, reject });
      this.enqueue([this.mainPeer!, message.header, ...message.frames], (e) => {
        this.pending.delete(id);
        reject(e);
      });
    });
  }

  /**
   * The request's frames, or a ProtocolError naming the op and the offending argument. The header starts with
   * `{"v":…,"id":…` so that the worker can read the id before anything else and answer under it whatever follows.
   */
  private encodeRequest(id: number, op: unknown, args: unknown): { header: string; frames: Uint8Array[] } {
    if (typeof op !== "string" || op.length < 1 || op.length > MAX_OP_LENGTH) {
      const shown =
        typeof op === "string"
          ? `${JSON.stringify(op.length > 80 ? `${op.slice(0, 80)}…` : op)} (${op.length} characters)`
          : `a ${op === null ? "null" : typeof op}`;
      throw new ProtocolError(`call: op must be an operation name of 1 to ${MAX_OP_LENGTH} characters, got ${shown}`, "request");
    }
    if (args === null || typeof args !== "object" || Array.isArray(args) || ArrayBuffer.isView(args) || args instanceof Tensor) {
      const shown = Array.isArray(args)
        ? `an array of ${args.length}`
        : args === null
          ? "null"
          : ArrayBuffer.isView(args)
            ? "a typed array"
            : args instanceof Tensor
              ? "a Tensor"
              : `a ${typeof args}`;
      throw new ProtocolError(`${op}: args must be a plain object of keyword arguments, got ${shown}; pass { name: value }`, "request");
    }
    const { value, metas, frames } = encodeValue(args, op);
    const header = JSON.stringify({ v: PROTOCOL_VERSION, id, op, args: value, ...(metas.length ? { tensors: metas } : {}) });
    const tooBig = (bytes: number): boolean => bytes > this.maxMessageSize;
    if (header.length * 3 > this.maxMessageSize && tooBig(Buffer.byteLength(header))) {
      // UTF-8: ≤ 3 bytes a UTF-16 unit
      throw new ProtocolError(
        `${op}: the request header is ${Buffer.byteLength(header)} bytes, over maxMessageSize (${this.maxMessageSize}); send large data as Tensors or raise Worker.start({ maxMessageSize })`,
        "request",
      );
    }
    const big = frames.findIndex((f) => tooBig(f.byteLength));
    if (big >= 0) {
      throw new ProtocolError(
        `${op}: tensor ${big} of the args is ${frames[big]!.byteLength} bytes, over maxMessageSize (${this.maxMessageSize}); raise Worker.start({ maxMessageSize }) or send it in parts`,
        "request",
      );
    }
    return { header, frames };
  }

  /**
   * The process is about to end on a signal: pending requests are forgotten without being settled (a rejection now
   * would surface as an unhandled error and change the exit status), later ones are refused.
   */
  abandon(): void {
    this.pending.clear();
    this.writeQueue.splice(0);
    if (!this.failure) this.failure = new Error("the worker was ended by a signal");
  }

  /** Rejects every pending and later request with `error`. */
  fail(error: Error): void {
    if (!this.failure) this.failure = error;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    for (const w of this.writeQueue.splice(0)) w.onError(this.failure);
  }

  close(): void {
    this.router.close();
  }

  private enqueue(frames: (Buffer | Uint8Array | string)[], onError: (e: Error) => void): void {
    this.writeQueue.push({ frames, onError });
    if (!this.writing) void this.drain();
  }

  // One writer: zeromq.js throws EBUSY on a second send while one is pending.
  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.writeQueue.length && !this.router.closed) {
        const item = this.writeQueue.shift()!;
        try {
          await this.router.send(item.frames);
        } catch (e) {
          item.onError(e as Error);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async readLoop(): Promise<void> {
    try {
      let inTurn = 0;
      for await (const [peer, header, ...frames] of this.router) {
        if (peer && header) this.onMessage(peer, header, frames);
        if (++inTurn >= MESSAGES_PER_TURN) {
          inTurn = 0;
          await new Promise<void>((r) => setImmediate(r));
        }
      }
    } catch (e) {
      if (!this.router.closed) this.fail(e as Error);
    }
  }

  private onMessage(peer: Buffer, header: Buffer, frames: Buffer[]): void {
    if (this.mainPeer?.equals(peer)) {
      this.onReply(header, frames);
      return;
    }
    if (this.heartbeatPeer?.equals(peer)) {
      let hb: unknown;
      try {
        hb = JSON.parse(header.toString("utf8"));
      } catch {
        return;
      }
      if (Heartbeat.safeParse(hb).success) {
        this.lastHeartbeat = Date.now();
        this.enqueue([peer, JSON.stringify({ v: PROTOCOL_VERSION, op: "hb", t: Date.now() / 1000 })], () => {});
      }
      return;
    }
    this.onStranger(peer, header, frames);
  }

  /** A peer that has not proved the token: its one chance is a small single-frame hello. Nothing else is read. */
  private onStranger(peer: Buffer, header: Buffer, frames: Buffer[]): void {
    const drop = (refuse: boolean): void => {
      this.dropped.messages++;
      this.dropped.bytes += header.length + frames.reduce((n, f) => n + f.length, 0);
      if (refuse && this.refusedPeers.size < MAX_REFUSED_PEERS) this.refusedPeers.add(peer.toString("latin1"));
    };
    // Both of the worker's sockets are known: nobody else has anything to say.
    if ((this.mainPeer && this.heartbeatPeer) || this.refusedPeers.has(peer.toString("latin1"))) {
      drop(false);
      return;
    }
    if (frames.length > 0 || header.length > HELLO_MAX_BYTES) {
      drop(true);
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(header.toString("utf8"));
    } catch {
      drop(true);
      return;
    }
    const hello = Hello.safeParse(msg);
    if (!hello.success || !this.tokenMatches(hello.data.token)) {
      drop(true);
      return;
    }
    if (hello.data.role === "main" && !this.mainPeer) {
      this.mainPeer = Buffer.from(peer);
      this.workerPid = hello.data.pid;
      for (const w of this.helloWaiters.splice(0)) w(this.workerPid);
    } else if (hello.data.role === "heartbeat" && !this.heartbeatPeer) {
      this.heartbeatPeer = Buffer.from(peer);
      this.lastHeartbeat = Date.now();
    }
  }

  private tokenMatches(candidate: string): boolean {
    const c = Buffer.from(candidate);
    return c.length === this.token.length && timingSafeEqual(c, this.token);
  }

  /**
   * A reply from the worker's request socket. One that cannot be decoded rejects the request it names with a
   * ProtocolError quoting its start, or every pending request when it names none (one of them will never be
   * answered otherwise).
   */
  private onReply(header: Buffer, frames: Buffer[]): void {
    let msg: unknown;
    try {
      msg = JSON.parse(header.toString("utf8"));
    } catch (e) {
      this.rejectUndecodable(header, `is not JSON (${(e as Error).message})`, idOf(undefined, header));
      return;
    }
    const parsed = Reply.safeParse(msg);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const why = issue ? `${issue.path.join(".") || "(header)"}: ${issue.message}` : parsed.error.message;
      this.rejectUndecodable(header, `does not follow the protocol (${why})`, idOf(msg, header));
      return;
    }
    const reply = parsed.data;
    const pending = this.pending.get(reply.id);
    if (!pending) {
      // Id 0 is never a request's: the worker could not tell which request failed, so none of them is answered.
      if (reply.id === 0 && !reply.ok)
        this.rejectUndecodable(header, `names no request (${reply.error.type}: ${reply.error.message})`, null);
      return;
    }
    this.pending.delete(reply.id);
    if (!reply.ok) {
      const err = new Error(reply.error.message) as ReplyError;
      err.info = reply.error;
      err.op = pending.op;
      pending.reject(err);
      return;
    }
    try {
      const metas: TensorMeta[] = reply.tensors ?? [];
      pending.resolve({ result: decodeValue(reply.result, metas, frames) });
    } catch (e) {
      pending.reject(
        new ProtocolError(
          `${pending.op}: the worker's reply cannot be decoded: ${(e as Error).message}; reply starts ${quoteStart(header)}`,
          "reply",
        ),
      );
    }
  }

  private rejectUndecodable(header: Buffer, why: string, id: number | null): void {
    const targets = id === null ? [...this.pending.keys()] : this.pending.has(id) ? [id] : [];
    for (const target of targets) {
      const p = this.pending.get(target)!;
      this.pending.delete(target);
      p.reject(new ProtocolError(`${p.op}: the worker sent a reply that ${why}; it starts ${quoteStart(header)}`, "reply"));
    }
  }
}

/** The request id a reply names: from its parsed JSON, or from the `{"v":1,"id":N` prefix the worker writes first. */
function idOf(msg: unknown, header: Buffer): number | null {
  if (msg !== null && typeof msg === "object" && Number.isSafeInteger((msg as { id?: unknown }).id)) return (msg as { id: number }).id;
  const m = /^\s*\{\s*"v"\s*:\s*\d+\s*,\s*"id"\s*:\s*(\d+)\s*[,}]/.exec(header.subarray(0, 64).toString("latin1"));
  return m ? Number(m[1]) : null;
}
