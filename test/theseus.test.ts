/** TheseusDistiller with the real worker: exact resume (the draws included), the extracted successor, bad options. */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type ModelHandle, Tensor, TheseusDistiller, type TheseusDistillerOptions } from "../src/index.js";
import { compareWeights, useRealWorker } from "./helpers/fixtures.js";

function makeBatch(seed: number): Record<string, Tensor> {
  const ids = Array.from({ length: 4 }, (_, i) => Array.from({ length: 6 }, (_, j) => BigInt(1 + ((seed * 31 + i * 7 + j * 13) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1n)),
      "int64",
    ),
    labels: Tensor.from(
      ids.map((_, i) => BigInt((seed + i) % 3)),
      "int64",
    ),
  };
}

const SLOW = Boolean(process.env.TEXTBREWER_SLOW_TESTS);

describe("TheseusDistiller (real worker)", () => {
  // dropout on: a resumed run matches only if the torch RNG and the replacement draws are both restored
  const suite = useRealWorker({ models: { teacher: { layers: 4, seed: 3 } }, prefix: "tbts-theseus-" });
  const data = [1, 2, 3].map(makeBatch);

  async function run(
    outputDir: string,
    numSteps: number,
    resumeFrom?: string,
  ): Promise<{ theseus: TheseusDistiller; teacher: ModelHandle }> {
    const teacher = await suite.worker.loadModel({ path: suite.models.teacher, task: "sequence-classification" });
    const theseus = await TheseusDistiller.create({
      trainConfig: { outputDir, device: "cpu", seed: 5, ckptSteps: 3 },
      teacher,
      numLayers: 2,
      replacement: { type: "linear", base: 0.2, k: 0.1 },
    });
    await theseus.train({ optimizer: { lr: 3e-3 }, data, numSteps, progress: false, ...(resumeFrom ? { resumeFrom } : {}) });
    return { theseus, teacher };
  }

  it("trains the successor on the task loss; extracted, it stands alone and predicts what the compound predicts", async () => {
    const { theseus, teacher } = await run(join(suite.tmp.path, "short"), 3);
    expect(theseus.groups).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(theseus.layerMap).toEqual([0, 1]);
    const state = await theseus.state();
    expect(state.step).toBe(3);
    expect(state.rate).toBeCloseTo(0.5, 12); // min(1, 0.2 + 0.1·3)
    expect(state.lastReplaced).toHaveLength(2);
    // the successor: a 2-layer HF model that predicts what the compound predicts in eval mode
    const successor = await theseus.extract();
    expect(successor.config?.num_hidden_layers).toBe(2);
    const dir = join(suite.tmp.path, "successor");
    await successor.save(dir);
    const loaded = await suite.worker.loadModel({ path: dir });
    const { labels: _l, ...inputs } = data[0]!;
    const [a, b] = [await theseus.model.predict(inputs), await loaded.predict(inputs)];
    expect(b.logits!.toArray()).toEqual(a.logits!.toArray());
    expect(loaded.initReport).toMatchObject({ source: "checkpoint", newlyInitialized: [] });
    // the teacher handle was copied, not trained
    const fresh = await suite.worker.loadModel({ path: suite.models.teacher, task: "sequence-classification" });
    expect((await teacher.predict(inputs)).logits!.toArray()).toEqual((await fresh.predict(inputs)).logits!.toArray());
  });

  it.skipIf(!SLOW)("resumed from a checkpoint, the weights and the draws equal the uninterrupted run's", async () => {
    const full = join(suite.tmp.path, "full");
    const { theseus, teacher } = await run(full, 9);
    const state = await theseus.state();
    expect(state.step).toBe(9);
    expect(state.rate).toBeCloseTo(1, 12); // min(1, 0.2 + 0.1·9)
    for (const from of [3, 6]) {
      const resumed = join(suite.tmp.path, `from${from}`);
      const r = await run(resumed, 9, join(full, `gs${from}`));
      expect(await r.theseus.state()).toEqual(state);
      const diff = await compareWeights(
        join(full, "gs9", "model", "model.safetensors"),
        join(resumed, "gs9", "model", "model.safetensors"),
      );
      expect(diff.onlyA).toEqual([]);
      expect(diff.common).toBeGreaterThan(50);
      expect(diff.maxDiff).toBe(0);
      await Promise.all([r.theseus.model.dispose(), r.teacher.dispose()]);
    }
    await Promise.all([theseus.model.dispose(), teacher.dispose()]);
  });

  it("refuses a bad schedule or cut, naming the field", async () => {
    const teacher = await suite.worker.loadModel({ path: suite.models.teacher, task: "sequence-classification" });
    const create = (o: Partial<TheseusDistillerOptions>) => TheseusDistiller.create({ teacher, numLayers: 2, ...o });
    await expect(create({ replacement: { type: "constant", rate: 2 } })).rejects.toThrow(/replacement.*rate/s);
    await expect(create({ numLayers: 7 })).rejects.toThrow(/numLayers: 7 but the teacher has 4 layers/);
    await expect(
      create({
        groups: [
          [0, 2],
          [2, 3],
        ],
      }),
    ).rejects.toThrow(/groups: \[\[0, 2\], \[2, 3\]\] must cut .*\(a group starts at 3\)/);
  });
});
