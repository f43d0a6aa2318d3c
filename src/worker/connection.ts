/**
 * The TypeScript end of the ZeroMQ link. Node binds a ROUTER; the worker's two DEALERs (requests, heartbeats)
 * connect and each proves the per-launch token in its first message. Only the peers that proved it are ever
 * addressed — a bound DEALER would round-robin requests over any process that connected to a tcp port.
 */
import { timingSafeEqual } from "node:crypto";
import * as zmq from "zeromq";
import { Heartbeat, Hello, PROTOCOL_VERSION, Reply, type ErrorInfo, type TensorMeta } from "./protocol.js";
import { decodeValue, encodeValue } from "./wire.js";

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
  private readonly router = new zmq.Router({ linger: 0, mandatory: true, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  private readonly token: Buffer;
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

  constructor(token: string) {
    this.token = Buffer.from(token);
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
    const id = this.nextId++;
    const { value, metas, frames } = encodeValue(args);
    const header: Record<string, unknown> = { v: PROTOCOL_VERSION, id, op, args: value };
    if (metas.length) header.tensors = metas;
    return new Promise<RawReply>((resolve, reject) => {
      this.pending.set(id, { op, resolve, reject });
      this.enqueue([this.mainPeer!, JSON.stringify(header), ...frames], (e) => {
        this.pending.delete(id);
        reject(e);
      });
    });
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
      for await (const [peer, header, ...frames] of this.router) {
        if (!peer || !header) continue;
        this.onMessage(peer, header, frames);
      }
    } catch (e) {
      if (!this.router.closed) this.fail(e as Error);
    }
  }

  private onMessage(peer: Buffer, header: Buffer, frames: Buffer[]): void {
    let msg: unknown;
    try {
      msg = JSON.parse(header.toString("utf8"));
    } catch {
      return; // not ours
    }
    if (this.mainPeer?.equals(peer)) return this.onReply(msg, frames);
    if (this.heartbeatPeer?.equals(peer)) {
      const hb = Heartbeat.safeParse(msg);
      if (hb.success) {
        this.lastHeartbeat = Date.now();
        this.enqueue([peer, JSON.stringify({ v: PROTOCOL_VERSION, op: "hb", t: Date.now() / 1000 })], () => {});
      }
      return;
    }
    const hello = Hello.safeParse(msg);
    if (!hello.success || !this.tokenMatches(hello.data.token)) return; // unauthenticated peers are ignored
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

  private onReply(msg: unknown, frames: Buffer[]): void {
    const parsed = Reply.safeParse(msg);
    if (!parsed.success) {
      this.fail(new Error(`the worker sent a malformed reply: ${parsed.error.message}`));
      return;
    }
    const reply = parsed.data;
    const pending = this.pending.get(reply.id);
    if (!pending) return;
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
      pending.reject(e as Error);
    }
  }
}
