/**
 * How much a local process without the launch token can stall Node: it connects to a tcp Connection whose worker
 * sockets have proved the token and sends one big message and many small ones. Reports the event loop's largest
 * delay, the peak RSS, and how many times JSON.parse ran meanwhile.
 * Knobs: BENCH_FLOOD_MIB (default 512), BENCH_FLOOD_SMALL (default 200000).
 */

import { monitorEventLoopDelay } from "node:perf_hooks";
import { execa } from "execa";
import * as zmq from "zeromq";
import { pythonEnv, resolvePython } from "../src/env/python-env.js";
import { Connection } from "../src/worker/connection.js";
import { PROTOCOL_VERSION } from "../src/worker/protocol.js";
import { emitResult } from "./emit.js";

const mib = Number(process.env.BENCH_FLOOD_MIB ?? 512);
const small = Number(process.env.BENCH_FLOOD_SMALL ?? 200_000);
const token = "0123456789abcdef".repeat(3);

const conn = new Connection(token, { maxMessageSize: 2 ** 33 });
const endpoint = await conn.bind("tcp://127.0.0.1:*");
const sockets = (["main", "heartbeat"] as const).map((role) => {
  const s = new zmq.Dealer({ linger: 0 });
  s.connect(endpoint);
  void s.send(JSON.stringify({ v: PROTOCOL_VERSION, op: "hello", token, role, pid: 1 }));
  return s;
});
await conn.waitForHello();
await new Promise((r) => setTimeout(r, 200));

const realParse = JSON.parse;
let parses = 0;
JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
  parses++;
  return realParse(text, reviver);
}) as typeof JSON.parse;

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
const t0 = Date.now();
const { python } = resolvePython();
process.stderr.write(`sending ${mib} MiB and ${small} small messages without the token\n`);
await execa(
  python,
  [
    "-c",
    `
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.SNDHWM, 0); s.connect(sys.argv[1])
s.send(b'{"x":"' + b"x" * (int(sys.argv[2]) << 20) + b'"}')
for _ in range(int(sys.argv[3])): s.send(b'{"x":1}')
s.close(linger=-1); ctx.term()
`,
    endpoint,
    String(mib),
    String(small),
  ],
  { env: pythonEnv() },
);
const sentMs = Date.now() - t0;
// The current Connection counts what it drops; without that counter, sample a fixed 15 s after the sender is done.
const counted = (conn as { dropped?: { messages: number } }).dropped;
const until = Date.now() + 15_000;
while (counted ? counted.messages < small + 1 : Date.now() < until) await new Promise((r) => setTimeout(r, 10));
delay.disable();
JSON.parse = realParse;
emitResult("flood", {
  bigMiB: mib,
  smallMessages: small,
  maxEventLoopDelayMs: Math.round(delay.max / 1e4) / 100,
  p99EventLoopDelayMs: Math.round(delay.percentile(99) / 1e4) / 100,
  senderDoneMs: sentMs,
  jsonParseCalls: parses,
  droppedUnread: counted?.messages ?? null,
  peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
});
for (const s of sockets) s.close();
conn.close();
