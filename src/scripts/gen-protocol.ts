import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { opsJsonSchema } from "../worker/ops/index.js";
import { protocolJsonSchema } from "../worker/protocol.js";
import { renderOpsTypes } from "./python-types.js";

const workerFile = (name: string): string => fileURLToPath(new URL(`../../python_worker/textbrewer_worker/wire/${name}`, import.meta.url));

export const PROTOCOL_SCHEMA_PATH = workerFile("protocol_schema.json");
export const OPS_SCHEMA_PATH = workerFile("ops_schema.json");
export const OPS_TYPES_PATH = workerFile("ops_types.py");

export function renderProtocolSchema(): string {
  return `${JSON.stringify(protocolJsonSchema(), null, 2)}\n`;
}

export function renderOpsSchema(): string {
  return `${JSON.stringify(opsJsonSchema(), null, 2)}\n`;
}

export { renderOpsTypes };

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [path, text] of [
    [PROTOCOL_SCHEMA_PATH, renderProtocolSchema()],
    [OPS_SCHEMA_PATH, renderOpsSchema()],
    [OPS_TYPES_PATH, renderOpsTypes()],
  ] as const) {
    writeFileSync(path, text);
    console.log(`wrote ${path}`);
  }
}
