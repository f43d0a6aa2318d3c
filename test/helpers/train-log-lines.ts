// Trains a tiny BERT once per run given as JSON ({ name, outputDir, options }) in argv[3], with the model folder in
// argv[2], so that a test can read what a run writes to a stderr that is no terminal. Before each run it writes
// `== <name>` to stderr.
import { BasicTrainer, Tensor, Worker } from "../../src/index.js";

interface Run {
  name: string;
  outputDir: string;
  options: Record<string, unknown>;
}

const [modelDir, runsJson] = process.argv.slice(2) as [string, string];
const runs = JSON.parse(runsJson) as Run[];

function makeBatch(seed: number): Record<string, Tensor> {
  const ids = Array.from({ length: 4 }, (_, i) => Array.from({ length: 8 }, (_, j) => BigInt(1 + ((seed * 31 + i * 7 + j * 13) % 99))));
  const labels = Array.from({ length: 4 }, (_, i) => BigInt((seed + i) % 3));
  return { input_ids: Tensor.from(ids, "int64"), labels: Tensor.from(labels, "int64") };
}

const data = Array.from({ length: 5 }, (_, i) => makeBatch(i));
const worker = await Worker.start({ device: "cpu" });
try {
  for (const run of runs) {
    process.stderr.write(`== ${run.name}\n`);
    const model = await worker.loadModel({ path: modelDir, task: "sequence-classification" });
    await new BasicTrainer({
      trainConfig: { outputDir: run.outputDir, device: "cpu" },
      model,
      adaptor: (_b: any, o: any) => ({ losses: o.loss }),
    }).train({
      optimizer: { lr: 1e-3 },
      scheduler: { type: "linear" },
      data,
      numEpochs: 2,
      maxGradNorm: 1,
      ...run.options,
    });
    await model.dispose();
  }
} finally {
  await worker.close();
}
