/** The options of a worker group (data-parallel ranks under torchrun), checked with the fix spelled out. */
import { z } from "zod";
import { ConfigError } from "../../config/errors.js";

export const DistributedOptions = z
  .object({
    /** Ranks on this node (torchrun's --nproc-per-node). On CUDA each local rank takes its own GPU, cuda:LOCAL_RANK. */
    nprocPerNode: z.int().min(1).max(1024),
    /** Collective backend: "nccl" on CUDA and "gloo" on the CPU by default ("auto"). */
    backend: z.enum(["auto", "gloo", "nccl"]).default("auto"),
    /** Nodes in the run; each runs the same script with its own nodeRank. Default 1. */
    nnodes: z.int().min(1).default(1),
    /** This node's index, 0 … nnodes-1. Default 0. */
    nodeRank: z.int().min(0).default(0),
    /** Address of node 0, reachable from every node (torchrun's --master-addr). Default 127.0.0.1. */
    masterAddr: z.string().min(1).default("127.0.0.1"),
    /** A free port on node 0 for the rendezvous (torchrun's --master-port); one node picks one itself when left out. */
    masterPort: z.int().min(1).max(65535).optional(),
    /** How long one rank waits in a collective for the others before its call fails (torch's timeout). Default 600 s. */
    collectiveTimeoutMs: z.int().min(1000).default(600_000),
    /**
     * How the ranks train the student: "ddp" (default) gives each rank a whole replica (DistributedDataParallel);
     * "fsdp" shards its parameters, gradients and optimizer state over the ranks (FSDP2 `fully_shard`) for a student
     * too big to replicate. Checkpoints hold the full weights either way; an fsdp run cannot resume (resumeFrom).
     */
    strategy: z.enum(["ddp", "fsdp"]).default("ddp"),
  })
  .strict();
export type DistributedOptions = z.input<typeof DistributedOptions>;
export type ResolvedDistributedOptions = z.output<typeof DistributedOptions>;

export function parseDistributedOptions(input: unknown): ResolvedDistributedOptions {
  const parsed = DistributedOptions.safeParse(input);
  if (!parsed.success) throw ConfigError.fromZod("distributed", parsed.error, { schema: DistributedOptions, input });
  const o = parsed.data;
  const problems = [];
  if (o.nodeRank >= o.nnodes) {
    problems.push({
      path: "nodeRank",
      kind: "invalid_value" as const,
      message: `${o.nodeRank} but nnodes is ${o.nnodes}; give 0 … ${o.nnodes - 1}`,
    });
  }
  if (o.nnodes > 1 && o.masterPort === undefined) {
    problems.push({
      path: "masterPort",
      kind: "invalid_value" as const,
      message: `missing; with nnodes ${o.nnodes} every node must name the same port on node 0 (masterAddr ${o.masterAddr}), e.g. masterPort: 29500`,
    });
  }
  if (problems.length) throw new ConfigError("distributed", problems);
  return o;
}

/** The device of a group: each rank picks its own GPU, so one GPU cannot be named. */
export function checkGroupDevice(device: string): void {
  if (device === "auto" || device === "cpu" || device === "cuda") return;
  throw new ConfigError("WorkerGroupOptions", [
    {
      path: "device",
      kind: "invalid_value",
      message: `'${device}': in a worker group each local rank takes cuda:LOCAL_RANK itself; use "cuda", "cpu" or "auto" (limit the GPUs with CUDA_VISIBLE_DEVICES)`,
    },
  ]);
}
