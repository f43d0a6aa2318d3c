// Starts a worker, prints `{ pid, endpoint }` as one JSON line, and waits for a signal with a long call in flight
// (as a training run would be). With `--own-handler` the script listens for SIGINT/SIGTERM itself (prints
// "handled" and exits 0), as a program may.
import { Worker } from "../../src/index.js";

if (process.argv.includes("--own-handler")) {
  const mine = (): void => {
    process.stdout.write("handled\n");
    process.exit(0);
  };
  process.on("SIGINT", mine);
  process.on("SIGTERM", mine);
}
const worker = await Worker.start({ device: "cpu" });
const busy = worker.runPython("test/helpers/sleepy.py:sleep", { seconds: 600 });
process.stdout.write(`${JSON.stringify({ pid: worker.pid, endpoint: worker.endpoint })}\n`);
await busy;
await worker.close();
