/**
 * Data-parallel training on a worker group (torchrun, gloo on the CPU): 2 ranks × shard 8 end with the weights of
 * 1 worker × batch 16, and the logged losses are the global batch's.
 */
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ShardError, WorkerGroup } from "../src/distributed/index.js";
import { BasicDistiller, BasicTrainer, GeneralDistiller, Tensor, type Worker } from "../src/index.js";
import { compareWeights, useRealWorker } from "./helpers/fixtures.js";

const SLOW = Boolean(process.env.TEXTBREWER_SLOW_TESTS);

function batch(seed: number, n = 16, len = 6): Record<string, Tensor> {
  const ids = Array.from({ length: n }, (_, i) => Array.from({ length: len }, (_, j) => BigInt(1 + ((seed * 17 + i * 7 + j * 13) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1n)),
      "int64",
    ),
    labels: Tensor.from(
      Array.from({ length: n }, (_, i) => BigInt((seed + i) % 3)),
      "int64",
    ),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function metrics(dir: string): Array<{ step: number; total: number; terms: Record<string, number> }> {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

const full = (b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });

describe("data-parallel training: 2 ranks × shard 8 equal 1 worker × batch 16 (gloo, CPU)", () => {
  const suite = useRealWorker({
    models: {
      teacher: { layers: 3, hidden: 48, seed: 1, dropout: 0 },
      student: { layers: 2, hidden: 32, seed: 2, dropout: 0 },
      dropped: { layers: 1, hidden: 32, seed: 6 },
    },
  });
  let group: WorkerGroup | undefined;
  beforeAll(async () => {
    group = await WorkerGroup.start({ device: "cpu", distributed: { nprocPerNode: 2 } });
  });
  afterAll(async () => {
    await group?.close();
  });

  type Kind = "basic" | "general";
  function train(on: "single" | "group", kind: Kind, gas: number): Promise<string> {
    return trainOn(on === "group" ? group! : suite.worker, join(suite.tmp.path, `${kind}-gas${gas}-${on}`), kind, gas);
  }

  async function trainOn(worker: Worker | WorkerGroup, outputDir: string, kind: Kind, gas: number): Promise<string> {
    const teacher = await worker.loadModel({ path: suite.models.teacher, task: "sequence-classification" });
    const student = await worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    // TextBrewer's dataParallel switch is accepted where the models live in a group
    const trainConfig = { outputDir, device: "cpu", seed: 5, gradientAccumulationSteps: gas, dataParallel: worker instanceof WorkerGroup };
    const options = { optimizer: { lr: 2e-3 }, data: [batch(1), batch(2), batch(3), batch(4)], numEpochs: 1, progress: false };
    try {
      if (kind === "basic") {
        await new BasicDistiller({
          trainConfig,
          distillConfig: { temperature: 2, hardLabelWeight: 0.5 },
          teacher,
          student,
          adaptorT: full,
          adaptorS: full,
        }).train(options);
      } else {
        await new GeneralDistiller({
          trainConfig,
          distillConfig: {
            temperature: 3,
            intermediateMatches: [{ layerT: 3, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 2, proj: ["linear", 32, 48] }],
          },
          teacher,
          student,
          adaptorT: full,
          adaptorS: full,
        }).train(options);
      }
    } finally {
      await Promise.all([teacher.dispose(), student.dispose()]);
    }
    return outputDir;
  }

  // basic without and general with accumulation always; the other two with TEXTBREWER_SLOW_TESTS=1
  const cases = [
    { kind: "basic" as Kind, gas: 1 },
    { kind: "general" as Kind, gas: 2 },
    ...(SLOW
      ? [
          { kind: "general" as Kind, gas: 1 },
          { kind: "basic" as Kind, gas: 2 },
        ]
      : []),
  ];
  it.each(cases)("$kind distiller, gradient accumulation $gas: same weights (1e-6) and the same logged losses", async ({ kind, gas }) => {
    const single = await train("single", kind, gas);
    const ranks = await train("group", kind, gas);
    const last = `gs${4 / gas}`;
    const weights = await compareWeights(join(single, last, "model", "model.safetensors"), join(ranks, last, "model", "model.safetensors"));
    expect(weights.common).toBeGreaterThan(30);
    expect(weights.onlyA.length + weights.onlyB.length).toBe(0);
    expect(weights.maxDiff).toBeLessThan(1e-6);
    if (kind === "general") {
      const proj = await compareWeights(join(single, last, "projections.safetensors"), join(ranks, last, "projections.safetensors"));
      expect(proj.common).toBe(2);
      expect(proj.maxDiff).toBeLessThan(1e-6);
    }
    // the losses in metrics.jsonl are the global batch's (averaged over the ranks), one line per step
    const a = metrics(single);
    const b = metrics(ranks);
    expect(b.map((l) => l.step)).toEqual(a.map((l) => l.step));
    for (const [i, line] of b.entries()) {
      expect(line.total).toBeCloseTo(a[i]!.total, 5);
      for (const [term, v] of Object.entries(a[i]!.terms)) expect(line.terms[term]).toBeCloseTo(v, 5);
    }
  });

  it.skipIf(!SLOW)("two nodes on localhost (nnodes 2, one rank each, the same script on each) equal 1 worker × batch 16", async () => {
    const masterPort = await freePort();
    const node = (nodeRank: number) =>
      WorkerGroup.start({ device: "cpu", distributed: { nprocPerNode: 1, nnodes: 2, nodeRank, masterPort, collectiveTimeoutMs: 120_000 } });
    const nodes = await Promise.all([node(0), node(1)]);
    try {
      expect(nodes.map((g) => g.ranks[0]!.rank)).toEqual([0, 1]);
      expect(nodes[1]!.ranks[0]!.worldSize).toBe(2);
      // each node runs the same loop on the same data, in its own output folder; node 0's checkpoints hold the weights
      const dirs = nodes.map((_, k) => join(suite.tmp.path, `two-nodes-${k}`));
      await Promise.all(nodes.map((g, k) => trainOn(g, dirs[k]!, "basic", 1)));
      const single = await train("single", "basic", 1);
      const weights = await compareWeights(
        join(single, "gs4", "model", "model.safetensors"),
        join(dirs[0]!, "gs4", "model", "model.safetensors"),
      );
      expect(weights.common).toBeGreaterThan(30);
      expect(weights.maxDiff).toBeLessThan(1e-6);
    } finally {
      await Promise.all(nodes.map((g) => g.close()));
    }
  });

  it("a 2-rank run resumed from its checkpoint ends with the uninterrupted run's weights (dropout on)", async () => {
    const run = async (outputDir: string, resumeFrom?: string): Promise<void> => {
      const model = await group!.loadModel({ path: suite.models.dropped, task: "sequence-classification" });
      try {
        await new BasicTrainer({
          trainConfig: { outputDir, device: "cpu", seed: 11, ckptSteps: 2 },
          model,
          adaptor: (_b: any, o: any) => ({ losses: o.loss }),
        }).train({
          optimizer: { lr: 3e-3 },
          scheduler: { type: "linear", warmupSteps: 1 },
          data: [batch(1), batch(2), batch(3)],
          numSteps: 4,
          progress: false,
          ...(resumeFrom ? { resumeFrom } : {}),
        });
      } finally {
        await model.dispose();
      }
    };
    const full = join(suite.tmp.path, "resume-full");
    await run(full);
    // rank 0 wrote the checkpoint; rank 1 added its random state only
    expect(existsSync(join(full, "gs2", "rng_state.pt"))).toBe(true);
    expect(existsSync(join(full, "gs2", "rng_state.rank1.pt"))).toBe(true);
    const resumed = join(suite.tmp.path, "resume-from-gs2");
    await run(resumed, join(full, "gs2"));
    const diff = await compareWeights(join(full, "gs4", "model", "model.safetensors"), join(resumed, "gs4", "model", "model.safetensors"));
    expect(diff.common).toBeGreaterThan(20);
    expect(diff.maxDiff).toBe(0);
  });

  it("TextBrewer's dataParallel in a single worker and localRank are refused with the replacement spelled out", async () => {
    const student = await suite.worker.loadModel({ path: suite.models.student, task: "sequence-classification" });
    const attempt = (trainConfig: Record<string, unknown>) =>
      new BasicDistiller({
        trainConfig: { outputDir: join(suite.tmp.path, "refused"), ...trainConfig },
        teacher: student,
        student,
        adaptorT: full,
        adaptorS: full,
      })
        .train({ optimizer: { lr: 1e-3 }, data: [batch(1)], numEpochs: 1, progress: false })
        .then(
          () => new Error("no error"),
          (e: unknown) => e as Error,
        );
    const single = await attempt({ dataParallel: true });
    expect(single.name).toBe("ConfigError");
    expect(single.message).toMatch(
      /dataParallel: true but the models live in a single Worker.*WorkerGroup\.start\(\{ device, distributed: \{ nprocPerNode: N \} \}\)/,
    );
    const local = await attempt({ localRank: 1 });
    expect(local.message).toMatch(/localRank: 1: each rank of a worker group gets its LOCAL_RANK.*leave localRank -1/);
    await student.dispose();
  });

  it("refuses a batch that does not split into equal shards, naming the sizes and the fix", async () => {
    const teacher = await group!.loadModel({ path: suite.models.teacher, task: "sequence-classification" });
    const student = await group!.loadModel({ path: suite.models.student, task: "sequence-classification" });
    const outputDir = join(suite.tmp.path, "uneven");
    const run = new BasicDistiller({ trainConfig: { outputDir, device: "cpu" }, teacher, student, adaptorT: full, adaptorS: full }).train({
      optimizer: { lr: 1e-3 },
      data: [batch(1), batch(2, 15)],
      numEpochs: 1,
      progress: false,
    });
    await expect(run).rejects.toThrow(ShardError);
    await expect(run).rejects.toThrow(/15 examples do not split into 2 equal shards.*divisible by 2/);
    await Promise.all([teacher.dispose(), student.dispose()]);
  });
});
