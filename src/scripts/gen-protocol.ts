import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { protocolJsonSchema } from "../worker/protocol.js";

export const PROTOCOL_SCHEMA_PATH = fileURLToPath(new URL("../../python_worker/textbrewer_worker/protocol_schema.json", import.meta.url));

export function renderProtocolSchema(): string {
  return `${JSON.stringify(protocolJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(PROTOCOL_SCHEMA_PATH, renderProtocolSchema());
  console.log(`wrote ${PROTOCOL_SCHEMA_PATH}`);
}
