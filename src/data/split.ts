/** Seeded train/dev/test splits shared by the readers: fractions checked, each part kept in the input's order. */
import { DataSplitError } from "./errors.js";
import { seededRng } from "./rng.js";

export interface SplitOptions {
  /** Seed of the shuffle (default 42). */
  seed?: number;
  /** Fractions of dev and test (default 0.1 each); train gets the rest. */
  devFraction?: number;
  testFraction?: number;
}

export interface Split<T> {
  train: T[];
  dev: T[];
  test: T[];
}

export type SplitPart = keyof Split<unknown>;

/** The dev and test fractions, checked: each ≥ 0 and their sum < 1. */
export function splitFractions(options: SplitOptions, who: string): { devFraction: number; testFraction: number } {
  const devFraction = options.devFraction ?? 0.1;
  const testFraction = options.testFraction ?? 0.1;
  if (!(devFraction >= 0 && testFraction >= 0 && devFraction + testFraction < 1)) {
    throw new RangeError(`${who}: need devFraction, testFraction >= 0 with a sum < 1, got ${devFraction}, ${testFraction}`);
  }
  return { devFraction, testFraction };
}

/** The part of each of `n` shuffled positions: the first round(n·test) go to test, the next round(n·dev) to dev. */
export function cutParts(n: number, fractions: { devFraction: number; testFraction: number }): SplitPart[] {
  const nTest = Math.round(n * fractions.testFraction);
  const nDev = Math.round(n * fractions.devFraction);
  return Array.from({ length: n }, (_, k) => (k < nTest ? "test" : k < nTest + nDev ? "dev" : "train"));
}

/**
 * The parts (of `counts`, how many `unit`s each part got) that are empty although asked for: train always, dev and
 * test when their fraction is above 0. Empty when every part got something.
 */
export function emptyParts(counts: Record<SplitPart, number>, fractions: { devFraction: number; testFraction: number }): SplitPart[] {
  const wanted: Record<SplitPart, boolean> = { train: true, dev: fractions.devFraction > 0, test: fractions.testFraction > 0 };
  return (["train", "dev", "test"] as const).filter((p) => wanted[p] && counts[p] === 0);
}

/** "train 5, dev 0, test 0" */
export function describeCounts(counts: Record<SplitPart, number>): string {
  return `train ${counts.train}, dev ${counts.dev}, test ${counts.test}`;
}

/**
 * A split stratified by `keyOf`: each group (in sorted key order) is shuffled with the seed and cut into test, dev and
 * train by the fractions (rounded), so every part has the same mix. Deterministic for a given seed and input; the
 * parts are disjoint and cover the input, each in the input's order. Throws DataSplitError when a part asked for
 * would be empty (too few items).
 */
export function splitStratified<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  options: SplitOptions = {},
  who = "splitStratified",
): Split<T> {
  const fractions = splitFractions(options, who);
  const rng = seededRng(options.seed ?? 42);
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const key = keyOf(item);
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  });
  const part = new Array<SplitPart>(items.length);
  for (const key of [...groups.keys()].sort()) {
    const idx = rng.shuffle(groups.get(key)!);
    const parts = cutParts(idx.length, fractions);
    for (const [k, i] of idx.entries()) part[i] = parts[k]!;
  }
  const split: Split<T> = { train: [], dev: [], test: [] };
  items.forEach((item, i) => {
    split[part[i]!].push(item);
  });
  const counts = { train: split.train.length, dev: split.dev.length, test: split.test.length };
  const empty = emptyParts(counts, fractions);
  if (empty.length) {
    throw new DataSplitError(
      `${who}: ${items.length} item${items.length === 1 ? "" : "s"} are too few for dev ${fractions.devFraction} and test ${fractions.testFraction} ` +
        `(${describeCounts(counts)}; ${empty.join(" and ")} would be empty): give more data or smaller fractions`,
    );
  }
  return split;
}
