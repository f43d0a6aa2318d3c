import { describe, expect, it } from "vitest";
import { weightSchedule } from "../src/schedules/weight.js";
import {
  epochCheckpointOffsets,
  isEpochCheckpoint,
  isStepsCheckpoint,
  plannedCheckpointSteps,
  stepsPerEpoch,
} from "../src/train/cadence.js";

const epochs = (ckptFrequency: number, ckptEpochFrequency: number, numBatches = 10, gradientAccumulationSteps = 1) =>
  plannedCheckpointSteps({ mode: "epochs", numBatches, gradientAccumulationSteps, numEpochs: 3, ckptFrequency, ckptEpochFrequency });

describe("epoch mode (spe = 10, 3 epochs)", () => {
  it("computes TextBrewer's in-epoch offsets with int()", () => {
    expect(epochCheckpointOffsets(10, 1)).toEqual([0]);
    expect(epochCheckpointOffsets(10, 2)).toEqual([0, 5]);
    expect(epochCheckpointOffsets(10, 3)).toEqual([0, 3, 6]);
    expect(epochCheckpointOffsets(2, 3)).toEqual([0, 0, 1]);
  });

  it("ckptFrequency 1 saves at the end of each epoch", () => {
    expect(epochs(1, 1)).toEqual([10, 20, 30]);
  });

  it("ckptFrequency 2 saves mid-epoch and at the end", () => {
    expect(epochs(2, 1)).toEqual([5, 10, 15, 20, 25, 30]);
  });

  it("ckptFrequency 3 saves at offsets 3, 6 and the end", () => {
    expect(epochs(3, 1)).toEqual([3, 6, 10, 13, 16, 20, 23, 26, 30]);
  });

  it("ckptEpochFrequency 2 saves in every second epoch and always in the last", () => {
    expect(epochs(1, 2)).toEqual([20, 30]);
    expect(epochs(2, 2)).toEqual([15, 20, 25, 30]);
    expect(epochs(3, 2)).toEqual([13, 16, 20, 23, 26, 30]);
  });

  it("drops leftover micro-batches: spe = floor(numBatches / gradientAccumulationSteps)", () => {
    expect(stepsPerEpoch(10, 3)).toBe(3);
    expect(stepsPerEpoch(2, 3)).toBe(0);
    expect(epochs(1, 1, 32, 3)).toEqual([10, 20, 30]);
    expect(epochs(1, 1, 2, 3)).toEqual([]);
  });

  it("checks one step at a time", () => {
    const q = { stepsPerEpoch: 10, numEpochs: 3, ckptFrequency: 2, ckptEpochFrequency: 2 };
    expect(isEpochCheckpoint({ ...q, globalStep: 5, epoch: 0 })).toBe(false);
    expect(isEpochCheckpoint({ ...q, globalStep: 15, epoch: 1 })).toBe(true);
    expect(isEpochCheckpoint({ ...q, globalStep: 20, epoch: 1 })).toBe(true);
    expect(isEpochCheckpoint({ ...q, globalStep: 21, epoch: 2 })).toBe(false);
    expect(isEpochCheckpoint({ ...q, globalStep: 25, epoch: 2 })).toBe(true);
  });
});

describe("steps mode", () => {
  it("saves every ckptSteps and at the last step", () => {
    expect(plannedCheckpointSteps({ mode: "steps", numSteps: 10, ckptSteps: 4 })).toEqual([4, 8, 10]);
    expect(plannedCheckpointSteps({ mode: "steps", numSteps: 8, ckptSteps: 4 })).toEqual([4, 8]);
    expect(plannedCheckpointSteps({ mode: "steps", numSteps: 3, ckptSteps: 5 })).toEqual([3]);
    expect(isStepsCheckpoint({ globalStep: 9, ckptSteps: 4, numSteps: 10 })).toBe(false);
    expect(isStepsCheckpoint({ globalStep: 10, ckptSteps: 4, numSteps: 10 })).toBe(true);
  });

  it("rejects impossible arguments", () => {
    expect(() => plannedCheckpointSteps({ mode: "steps", numSteps: 10, ckptSteps: 0 })).toThrow(RangeError);
    expect(() => isStepsCheckpoint({ globalStep: 0, ckptSteps: 4, numSteps: 10 })).toThrow(RangeError);
    expect(() => epochCheckpointOffsets(10, 0)).toThrow(RangeError);
  });
});

describe("weight schedules", () => {
  it("follow TextBrewer: growth x, decay 1 - x, none keeps the configured weight", () => {
    expect(weightSchedule("linear_growth", 0.25)).toBe(0.25);
    expect(weightSchedule("linear_decay", 0.25)).toBe(0.75);
    expect(weightSchedule("linear_decay", 1)).toBe(0);
    expect(weightSchedule("none", 0.5)).toBeNull();
    expect(() => weightSchedule("linear_decay", Number.NaN)).toThrow(RangeError);
  });
});
