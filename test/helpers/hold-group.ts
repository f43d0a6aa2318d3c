// Starts a 2-rank worker group, prints torchrun's and the ranks' pids as JSON, and waits to be killed.
import { WorkerGroup } from "../../src/distributed/index.js";

const group = await WorkerGroup.start({ device: "cpu", distributed: { nprocPerNode: 2 } });
process.stdout.write(`${JSON.stringify([group.pid, ...group.ranks.map((r) => r.pid)])}\n`);
setInterval(() => {}, 1000);
