import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  OPS_SCHEMA_PATH,
  OPS_TYPES_PATH,
  PROTOCOL_SCHEMA_PATH,
  renderOpsSchema,
  renderOpsTypes,
  renderProtocolSchema,
} from "../src/scripts/gen-protocol.js";
import { Reply, Request } from "../src/worker/protocol.js";

describe("protocol schema", () => {
  it("the worker's generated copy is up to date (run `npm run gen:protocol` after changing src/worker/protocol.ts)", () => {
    expect(readFileSync(PROTOCOL_SCHEMA_PATH, "utf8")).toBe(renderProtocolSchema());
  });

  it("the worker's op schemas and TypedDicts are up to date (run `npm run gen:protocol` after changing src/worker/ops/)", () => {
    expect(readFileSync(OPS_SCHEMA_PATH, "utf8")).toBe(renderOpsSchema());
    expect(readFileSync(OPS_TYPES_PATH, "utf8")).toBe(renderOpsTypes());
  });

  it("rejects unknown envelope keys and bad tensor metadata", () => {
    expect(Request.safeParse({ v: 1, id: 1, op: "ping", extra: 1 }).success).toBe(false);
    expect(Request.safeParse({ v: 1, id: 1, op: "echo", tensors: [{ dtype: "complex64", shape: [1], byteLength: 8 }] }).success).toBe(
      false,
    );
    expect(Reply.safeParse({ v: 1, id: 3, ok: false, error: { type: "E", message: "m", traceback: "t" } }).success).toBe(true);
  });
});
