/** Ops of a teacher service (src/service/): the worker holding the teachers serves them to student workers. */
import { z } from "zod";
import { adaptorSpecSchema } from "../../adaptor/spec.js";
import { defineOp } from "./define.js";
import { modelId, nothing, PYTHON_TYPE } from "./wire-types.js";

const adaptorSpec = adaptorSpecSchema.meta({ [PYTHON_TYPE]: "dict[str, Any]" });
const z85Key = z.string().length(40);

export const serviceStats = z.strictObject({
  /** Requests answered with teacher outputs. */
  requests: z.number(),
  /** Teacher forwards run (requests of several clients may share one). */
  forwards: z.number(),
  rows: z.number(),
  busyMs: z.number(),
  idleMs: z.number(),
  /** Requests answered with an error (a bad token, a batch the teacher rejected). */
  errors: z.number(),
  /** Clients (connections) seen so far. */
  clients: z.number(),
  /** CURVE handshakes refused for a public key not on the allow-list. */
  refusedKeys: z.number(),
});

export const serviceOps = {
  /** Binds the students' socket and starts serving the teachers; returns the bound endpoint (a tcp port resolved). */
  teacher_service_start: defineOp(
    z.strictObject({
      teachers: z.array(modelId).min(1),
      adaptors: z.array(adaptorSpec).min(1),
      endpoint: z.string().min(1),
      token: z.string().min(16),
      curve: z
        .strictObject({ publicKey: z85Key, secretKey: z85Key, clientKeys: z.array(z85Key) })
        .nullable()
        .default(null),
      /** Rows of one stacked forward across clients, at most (0: each request runs alone). */
      maxBatchRows: z.int().min(0).default(0),
      /** The teachers' forward under autocast to bfloat16 / float16, or in their own dtype ("no"). */
      mixedPrecision: z.enum(["no", "fp16", "bf16"]).default("no"),
    }),
    /** The bound endpoint, and what fell back (a mixedPrecision the device cannot autocast to). */
    z.strictObject({ endpoint: z.string(), warnings: z.array(z.string()) }),
  ),
  /** Adds a client's CURVE public key to the allow-list. */
  teacher_service_allow: defineOp(z.strictObject({ publicKey: z85Key }), nothing),
  teacher_service_stats: defineOp(z.strictObject({}), serviceStats),
  teacher_service_stop: defineOp(z.strictObject({}), nothing),
};
