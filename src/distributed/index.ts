/** `textbrewer-ts/distributed`: data-parallel ranks on torchrun (a WorkerGroup), one or more nodes. */
export type { DistributedOptions } from "../worker/group/options.js";
export { ShardError } from "../worker/group/shard.js";
export type { RankInfo, WorkerGroupOptions } from "../worker/group/worker-group.js";
export { RankWorker, WorkerGroup } from "../worker/group/worker-group.js";
