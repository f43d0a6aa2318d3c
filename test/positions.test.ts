/** The loop's positions: which micro-batches form each optimizer step, and where a resumed run starts. */
import { describe, expect, it } from "vitest";
import { DataFeed } from "../src/train/data.js";
import { type PositionPlan, positions } from "../src/train/positions.js";
import type { Batch } from "../src/worker/model-handle.js";

/** Batch i is the number i, so a group reads as the batch indices it holds. */
const feed = (n: number): DataFeed => new DataFeed(Array.from({ length: n }, (_, i) => i as unknown as Batch));

async function groups(n: number, plan: PositionPlan, start = { globalStep: 0, pass: 0, index: 0 }): Promise<number[][]> {
  const out: number[][] = [];
  let current: number[] = [];
  for await (const { item, at } of positions(feed(n), plan, start)) {
    current.push(item.batch as unknown as number);
    if (at.optimizerStep) {
      out.push(current);
      current = [];
    }
  }
  return out;
}

describe("positions", () => {
  it("steps mode counts micro-batches over the cycled data: 7 batches, accumulation 2", async () => {
    expect(await groups(7, { mode: "steps", gradientAccumulationSteps: 2, totalSteps: 5 })).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 0],
      [1, 2],
    ]);
  });

  it("epoch mode drops the micro-batches after the last full group of each epoch", async () => {
    expect(await groups(5, { mode: "epochs", gradientAccumulationSteps: 2, stepsPerEpoch: 2, numEpochs: 2, totalSteps: 4 })).toEqual([
      [0, 1],
      [2, 3],
      [0, 1],
      [2, 3],
    ]);
  });

  it("a resumed run continues with the same groups, from the end of a pass too", async () => {
    const plan: PositionPlan = { mode: "steps", gradientAccumulationSteps: 2, totalSteps: 5 };
    const full = await groups(7, plan);
    const all: Array<{ globalStep: number; pass: number; index: number }> = [];
    for await (const { at } of positions(feed(7), plan, { globalStep: 0, pass: 0, index: 0 })) {
      if (at.optimizerStep) all.push({ globalStep: at.globalStep, ...at.next });
    }
    expect(all[2]).toEqual({ globalStep: 3, pass: 0, index: 6 });
    for (const start of all.slice(0, -1)) expect(await groups(7, plan, start)).toEqual(full.slice(start.globalStep));
    // 4 batches, accumulation 1: step 4 ends pass 0 and the run resumes at pass 1
    const four: PositionPlan = { mode: "steps", gradientAccumulationSteps: 1, totalSteps: 6 };
    expect(await groups(4, four, { globalStep: 4, pass: 0, index: 4 })).toEqual([[0], [1]]);
  });
});
