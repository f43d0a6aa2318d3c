/**
 * Checks a call against the op catalogue: args before anything is sent (defaults filled in), the result when it
 * arrives. Both fail with ProtocolError in the house style: the op, the field path, the value and what is allowed.
 */
import { formatZodError, suggestName } from "../../config/errors.js";
import { ProtocolError } from "../errors.js";
import { OP_NAMES, OPS, type OpName, type OpParsedArgs, type OpResult } from "./index.js";

export function checkOpName(op: unknown): asserts op is OpName {
  if (typeof op === "string" && Object.hasOwn(OPS, op)) return;
  const near = typeof op === "string" ? suggestName(op, OP_NAMES) : undefined;
  throw new ProtocolError(
    `call: unknown op ${JSON.stringify(op)}${near ? ` (did you mean '${near}'?)` : ""}; the worker's ops are ${OP_NAMES.join(", ")}` +
      " (an op of your own registered in the worker goes through worker.callUnchecked)",
    "request",
  );
}

/** The args as the worker's handler receives them; throws ProtocolError (direction "request") when they do not fit. */
export function checkArgs<N extends OpName>(op: N, args: unknown): OpParsedArgs<N> {
  const schema = OPS[op].args;
  const parsed = schema.safeParse(args);
  if (!parsed.success) {
    throw new ProtocolError(`${op}: ${formatZodError("args", parsed.error, { schema, input: args })}; nothing was sent`, "request");
  }
  // safeParse of OPS[op].args gives OpParsedArgs<N>; TypeScript cannot follow the lookup through the generic N
  return parsed.data as OpParsedArgs<N>;
}

/** The result typed; throws ProtocolError (direction "reply") naming the op and the field that does not fit. */
export function checkResult<N extends OpName>(op: N, result: unknown): OpResult<N> {
  const schema = OPS[op].result;
  const parsed = schema.safeParse(result);
  if (!parsed.success) {
    throw new ProtocolError(
      `${op}: the worker's result does not match the op catalogue (src/worker/ops/): ${formatZodError("result", parsed.error, { schema, input: result })}`,
      "reply",
    );
  }
  return parsed.data as OpResult<N>;
}
