import { describe, expect, it } from "vitest";
import { DistillCache, Tensor } from "../src/index.js";
import { useRealWorker } from "./helpers/fixtures.js";

const VOCAB = 40;
function batch(seed: number): Record<string, Tensor> {
  return {
    input_ids: Tensor.from(
      Array.from({ length: 3 }, (_, i) => Array.from({ length: 6 }, (_, j) => BigInt(1 + ((seed * 13 + i * 31 + j * 7) % 99)))),
      "int64",
    ),
    attention_mask: Tensor.from(
      Array.from({ length: 3 }, () => Array.from({ length: 6 }, () => 1n)),
      "int64",
    ),
  };
}

describe("fidelity report of sparse teacher targets (real worker)", () => {
  // token logits over 40 classes stand in for a vocabulary
  const suite = useRealWorker({
    models: { teacher: { arch: "BertForTokenClassification", layers: 1, numLabels: VOCAB, seed: 5, dropout: 0 } },
  });

  it("reports KL and bytes per token of top-k and sampled targets on a sample, storing nothing", async () => {
    const teacher = await suite.worker.loadModel({ path: suite.models.teacher, task: "token-classification" });
    const adaptorT = (_b: any, o: any) => ({ logits: o.logits });
    const cache = await DistillCache.open({ teachers: teacher, adaptorT, topK: 4, temperature: 0.1 });
    const [report] = await cache.fidelity({ data: [batch(1), batch(2), batch(3)], topK: [4, VOCAB], samples: [4, 512], batches: 2 });
    expect(report!.positions).toBe(2 * 3 * 6);
    expect(report!.vocab).toBe(VOCAB);
    expect(report!.idBytes).toBe(4); // int32 ids
    expect(report!.dense.bytesPerToken).toBe(2 * VOCAB);
    const [top4, full] = report!.topK;
    expect(top4!.bytesPerToken).toBe(4 * (2 + 4));
    expect(top4!.keptMass).toBeGreaterThan(0);
    expect(top4!.keptMass).toBeLessThan(1);
    expect(top4!.klRenormalizedToFull).toBeGreaterThan(0);
    expect(full!.keptMass).toBeCloseTo(1, 9);
    expect(full!.klFullToUniformTail).toBeCloseTo(0, 9);
    const [few, many] = report!.sampled;
    expect(few!.bytesPerToken).toBe(4 * (2 + 4)); // int32 ids + float16 log-probabilities, as the sampled cache form
    expect(few!.klSampledToFull).toBeGreaterThan(many!.klSampledToFull);
    expect(cache.stats.teacherForwards).toBe(0);
    await cache.close();
    await teacher.dispose();
  });
});
