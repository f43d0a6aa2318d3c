/**
 * The op catalogue: every op the worker serves, with the zod schema of its args and of its result. It is the one
 * definition of the boundary: `worker.call(op, args)` is typed from it, validates args (filling defaults) before
 * sending and the result on arrival, and `npm run gen:protocol` writes it as JSON Schema
 * (python_worker/textbrewer_worker/wire/ops_schema.json, which the worker validates each request's args against) and as
 * Python TypedDicts (ops_types.py, what the handlers receive).
 *
 * To add an op: its schemas in the module of its job here, the handler in Python (`@op("name")`, args typed with the
 * generated TypedDict), then `npm run gen:protocol`.
 */
import { z } from "zod";
import { cacheOps } from "./cache.js";
import type { OpSpec } from "./define.js";
import { distributedOps } from "./distributed.js";
import { exportOps } from "./export.js";
import { layerMapOps } from "./layer-map.js";
import { lmOps } from "./lm.js";
import { miscOps } from "./misc.js";
import { modelOps } from "./models.js";
import { packagedOps } from "./packaged.js";
import { serviceOps } from "./service.js";
import { theseusOps } from "./theseus.js";
import { tokenizerOps } from "./tokenizers.js";
import { trainingOps } from "./training.js";
import { wireOverride } from "./wire-types.js";

export const OPS = {
  ...miscOps,
  ...modelOps,
  ...tokenizerOps,
  ...trainingOps,
  ...cacheOps,
  ...packagedOps,
  ...distributedOps,
  ...exportOps,
  ...layerMapOps,
  ...theseusOps,
  ...serviceOps,
  ...lmOps,
} satisfies Record<string, OpSpec>;

type Catalogue = typeof OPS;
export type OpName = keyof Catalogue;
/** What a caller passes: fields with a default may be left out. */
export type OpArgs<N extends OpName> = z.input<Catalogue[N]["args"]>;
/** What the worker's handler receives, defaults filled in. */
export type OpParsedArgs<N extends OpName> = z.output<Catalogue[N]["args"]>;
export type OpResult<N extends OpName> = z.output<Catalogue[N]["result"]>;

export const OP_NAMES = Object.keys(OPS).sort() as OpName[];

export function isOpName(name: string): name is OpName {
  return Object.hasOwn(OPS, name);
}

/** One schema as JSON Schema draft 7 in its wire form (see wireOverride). */
export function wireJsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { target: "draft-7", io, unrepresentable: "any", override: wireOverride }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

/**
 * Every op's args and result as JSON Schema (draft 7, what fastjsonschema compiles), in their wire form: a tensor is
 * its `{"$t": i}` placeholder, a number that may be non-finite also its `{"$f": …}` one. Args are described as
 * callers send them (`input`: defaulted fields optional, with their `default`, which the worker's validator fills
 * in), results as this side reads them.
 */
export function opsJsonSchema(): Record<string, unknown> {
  const ops: Record<string, unknown> = {};
  for (const name of OP_NAMES) {
    const spec: OpSpec = OPS[name];
    ops[name] = { args: wireJsonSchema(spec.args, "input"), result: wireJsonSchema(spec.result, "input") };
  }
  return { title: "textbrewer-ts worker ops", ops };
}

export type { OpSpec } from "./define.js";
export { trainStepExtras } from "./training.js";
