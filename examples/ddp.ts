/**
 * Data-parallel distillation: the worker runs under torchrun as a group of ranks (gloo on the CPU, nccl on CUDA),
 * each global batch of 32 is split into one shard per rank, and DDP averages the gradients. A BERT teacher built
 * on the spot is fine-tuned first, then a 2-layer student learns from it with GeneralDistiller (KD plus a
 * hidden_mse match through a trained projection).
 *
 *   npx tsx examples/ddp.ts                      # 2 ranks on this machine
 *   RANKS=4 npx tsx examples/ddp.ts              # 4 ranks (on CUDA: one GPU each)
 *
 * Two nodes: run the same script on each, with the address of node 0 and a free port there:
 *   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 npx tsx examples/ddp.ts   # on node 0
 *   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 npx tsx examples/ddp.ts   # on node 1
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WorkerGroup } from "../src/distributed/index.js";
import { BasicTrainer, GeneralDistiller } from "../src/index.js";
import { accuracy, bertConfig, syntheticBatches } from "./shared/synthetic.js";

const env = process.env;
const task = { vocab: 200, seq: 32, batch: 32 };
const dir = mkdtempSync(join(tmpdir(), "ddp-"));
await using group = await WorkerGroup.start({
  device: "auto",
  distributed: {
    nprocPerNode: Number(env.RANKS ?? 2),
    nnodes: Number(env.NNODES ?? 1),
    nodeRank: Number(env.NODE_RANK ?? 0),
    ...(env.MASTER_ADDR ? { masterAddr: env.MASTER_ADDR } : {}),
    ...(env.MASTER_PORT ? { masterPort: Number(env.MASTER_PORT) } : {}),
  },
});
try {
  console.log(`ranks on this node: ${group.ranks.map((r) => `${r.rank}/${r.worldSize} (${r.backend})`).join(", ")}`);
  await group.seed(1);
  const teacher = await group.createModel({
    config: bertConfig({ vocab: task.vocab, hidden: 64, layers: 4, heads: 4, labels: 2 }),
    task: "sequence-classification",
  });
  const train = syntheticBatches(24, 1, task);
  const dev = syntheticBatches(6, 2, task);
  await new BasicTrainer({
    trainConfig: { outputDir: join(dir, "teacher-run"), ckptEpochFrequency: 100, seed: 1 },
    model: teacher,
    adaptor: (_b: any, o: any) => ({ losses: o.loss }),
  }).train({ optimizer: { lr: 1e-3 }, data: train, numEpochs: 4 });
  console.log(`teacher dev accuracy ${(await accuracy(teacher, dev)).toFixed(3)}`);

  const student = await group.createModel({ config: { num_hidden_layers: 2 }, initFrom: teacher, layerMap: [1, 3] });
  const adaptor = (_b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states });
  const result = await new GeneralDistiller({
    trainConfig: { outputDir: join(dir, "student-run"), seed: 2, dataParallel: true },
    distillConfig: {
      temperature: 4,
      intermediateMatches: [{ layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1, proj: ["linear", 64, 64] }],
    },
    teacher,
    student,
    adaptorT: adaptor,
    adaptorS: adaptor,
  }).train({ optimizer: { lr: 2e-3 }, data: train, numEpochs: 6 });
  console.log(
    `student dev accuracy ${(await accuracy(student, dev)).toFixed(3)} after ${result.globalStep} steps (checkpoints written by rank 0)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
