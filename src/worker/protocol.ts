/**
 * The wire protocol between the TypeScript client and the Python worker.
 *
 * This file is the single definition of the message envelope. `npm run gen:protocol` writes it as JSON Schema to
 * python_worker/textbrewer_worker/wire/protocol_schema.json, which the worker validates every message against; a test
 * fails when the generated file is stale.
 *
 * A message is multipart: frame 0 is a UTF-8 JSON header, frames 1..n are raw little-endian, C-contiguous tensor
 * bytes described by `header.tensors[i]`. Inside `args`/`result`, `{ "$t": i }` stands for tensor i.
 *
 * The header is strict JSON (RFC 8259) both ways: a non-finite number travels as `{ "$f": "NaN" }`,
 * `{ "$f": "Infinity" }` or `{ "$f": "-Infinity" }` and is decoded back to NaN/±Infinity (JS) or float nan/±inf
 * (Python); a bare `NaN` token is a protocol error. An object whose only key is `$t` or `$f` is therefore
 * reserved. A request header starts with `{"v":<int>,"id":<int>` so that the worker reads the id before anything
 * else and answers even a request it cannot parse under that id. Each frame is at most the connection's
 * `maxMessageSize` bytes (ZeroMQ disconnects a peer that sends a larger one); both sides refuse to send one.
 */
import { z } from "zod";

export const PROTOCOL_VERSION = 1;

export const DTYPES = ["float32", "float16", "bfloat16", "float64", "int64", "int32", "int8", "uint8", "bool"] as const;
export const DType = z.enum(DTYPES);
export type DType = z.infer<typeof DType>;

export const TensorMeta = z
  .object({
    dtype: DType,
    shape: z.array(z.int().min(0)),
    byteLength: z.int().min(0),
  })
  .strict();
export type TensorMeta = z.infer<typeof TensorMeta>;

const Id = z.int().min(0);
export const MAX_OP_LENGTH = 64;

/** TS → worker. */
export const Request = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    id: Id,
    op: z.string().min(1).max(MAX_OP_LENGTH),
    args: z.record(z.string(), z.unknown()).optional(),
    tensors: z.array(TensorMeta).optional(),
  })
  .strict();
export type Request = z.infer<typeof Request>;

export const ErrorInfo = z
  .object({
    type: z.string(),
    message: z.string(),
    traceback: z.string(),
  })
  .strict();
export type ErrorInfo = z.infer<typeof ErrorInfo>;

/** Worker → TS, exactly one per request. */
export const Reply = z.discriminatedUnion("ok", [
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: Id,
      ok: z.literal(true),
      result: z.unknown().optional(),
      tensors: z.array(TensorMeta).optional(),
    })
    .strict(),
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: Id,
      ok: z.literal(false),
      error: ErrorInfo,
    })
    .strict(),
]);
export type Reply = z.infer<typeof Reply>;

/** Worker → TS, first message on each connection: proves the per-launch token. */
export const Hello = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    op: z.literal("hello"),
    token: z.string().min(16),
    role: z.enum(["main", "heartbeat"]),
    pid: z.int(),
  })
  .strict();
export type Hello = z.infer<typeof Hello>;

/** Both ways on the heartbeat connection. */
export const Heartbeat = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    op: z.literal("hb"),
    t: z.number(),
  })
  .strict();
export type Heartbeat = z.infer<typeof Heartbeat>;

/** Every message the worker may send, as one schema (used to generate the worker's copy). */
export const WorkerMessage = z.union([Hello, Heartbeat, Reply]);

export function protocolJsonSchema(): Record<string, unknown> {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "textbrewer-ts worker protocol",
    version: PROTOCOL_VERSION,
    dtypes: [...DTYPES],
    placeholders: {
      tensor: '{"$t": i} inside args/result stands for tensor frame i+1',
      nonFinite: '{"$f": "NaN" | "Infinity" | "-Infinity"} stands for that number; bare NaN/Infinity tokens are invalid JSON',
      requestPrefix: 'a request header starts with {"v":<int>,"id":<int>, read before the rest',
    },
    request: z.toJSONSchema(Request),
    reply: z.toJSONSchema(Reply),
    hello: z.toJSONSchema(Hello),
    heartbeat: z.toJSONSchema(Heartbeat),
  };
}
