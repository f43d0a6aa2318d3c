// Starts a worker, prints its pid, and waits to be killed (used to check that the worker outlives no parent).
import { Worker } from "../../src/index.js";

const worker = await Worker.start({ device: "cpu" });
process.stdout.write(`${worker.pid}\n`);
setInterval(() => {}, 1000);
