import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BasicTrainer, GeneralDistiller, Tensor } from "../src/index.js";
import { compareWeights, useRealWorker } from "./helpers/fixtures.js";

function batch(seed: number): Record<string, Tensor> {
  const ids = Array.from({ length: 4 }, (_, i) => Array.from({ length: 8 }, (_, j) => BigInt(1 + ((seed * 29 + i * 7 + j * 13) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1n)),
      "int64",
    ),
    labels: Tensor.from([0n, 1n, 2n, 1n], "int64"),
  };
}
const adaptor = (b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });
const data = [batch(1), batch(2), batch(3), batch(4)];

describe("precision, pipelining and compile paths on CPU (real worker)", () => {
  const suite = useRealWorker({ models: { teacher: { layers: 4, seed: 1 }, student: { layers: 2, seed: 2 } } });
  const { tmp, models } = suite;

  async function run(name: string, extra: { mixedPrecision?: "no" | "bf16" | "fp16"; inFlight?: number; compile?: boolean }) {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    const outputDir = join(tmp.path, name);
    try {
      await new GeneralDistiller({
        trainConfig: { outputDir, device: "cpu", seed: 3, mixedPrecision: extra.mixedPrecision ?? "no" },
        distillConfig: {
          hardLabelWeight: 0.5,
          intermediateMatches: [{ layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 }],
        },
        teacher,
        student,
        adaptorT: adaptor,
        adaptorS: adaptor,
      }).train({ optimizer: { lr: 1e-3 }, data, numEpochs: 2, inFlight: extra.inFlight ?? 2, compile: extra.compile ?? false });
    } finally {
      await Promise.all([teacher.dispose(), student.dispose()]);
    }
    return {
      dir: outputDir,
      lines: readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { total: number; terms: Record<string, number> }),
    };
  }

  const maxDiff = async (a: string, b: string) =>
    (await compareWeights(join(a, "gs8", "model", "model.safetensors"), join(b, "gs8", "model", "model.safetensors"))).maxDiff;

  it.each(["bf16", "fp16"] as const)("%s autocast trains with finite losses close to float32", async (mode) => {
    const fp32 = await run(`fp32-${mode}`, {});
    const amp = await run(mode, { mixedPrecision: mode });
    for (const l of amp.lines) {
      expect(Number.isFinite(l.total)).toBe(true);
      for (const v of Object.values(l.terms)) expect(Number.isFinite(v)).toBe(true);
    }
    // lower precision, same training: the first step's loss agrees to the dtype's rounding
    expect(Math.abs(amp.lines[0]!.total - fp32.lines[0]!.total)).toBeLessThan(mode === "bf16" ? 0.05 : 0.01);
    expect(amp.lines[0]!.total).not.toBe(fp32.lines[0]!.total); // autocast really ran
  });

  it("the pipelined loop (4 steps in flight) gives exactly the weights of one step in flight", async () => {
    const one = await run("inflight-1", { inFlight: 1 });
    const four = await run("inflight-4", { inFlight: 4 });
    expect(four.lines.map((l) => l.total)).toEqual(one.lines.map((l) => l.total));
    expect(await maxDiff(one.dir, four.dir)).toBe(0);
  });

  it("compile: true trains the same model through torch.compile", async () => {
    const factory = join(tmp.path, "mlp.py");
    writeFileSync(
      factory,
      "import torch\n" +
        "class MLP(torch.nn.Module):\n" +
        "    def __init__(self):\n        super().__init__(); torch.manual_seed(0)\n" +
        "        self.net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4))\n" +
        "    def forward(self, x, labels):\n        logits = self.net(x)\n" +
        "        return {'logits': logits, 'loss': torch.nn.functional.cross_entropy(logits, labels)}\n" +
        "def make():\n    return MLP()\n",
    );
    const rows = Array.from({ length: 8 }, (_, i) => Array.from({ length: 16 }, (_, j) => Math.sin(i * 16 + j)));
    const mlpData = [
      {
        x: Tensor.from(rows),
        labels: Tensor.from(
          rows.map((_, i) => BigInt(i % 4)),
          "int64",
        ),
      },
    ];
    const train = async (name: string, compile: boolean) => {
      const model = await suite.worker.loadModel({ factory: `${factory}:make` });
      const outputDir = join(tmp.path, name);
      await new BasicTrainer({
        trainConfig: { outputDir, device: "cpu" },
        model,
        adaptor: (_b: any, o: any) => ({ losses: o.loss }),
      }).train({
        optimizer: { lr: 1e-2 },
        data: mlpData,
        numEpochs: 5,
        compile,
      });
      await model.dispose();
      return readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { total: number }).total);
    };
    const eager = await train("eager", false);
    const compiled = await train("compiled", true);
    expect(compiled.length).toBe(5);
    compiled.forEach((v, i) => {
      expect(v).toBeCloseTo(eager[i]!, 5);
    });
  });
});
