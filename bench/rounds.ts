/**
 * What the benchmarks share to compare modes on a machine whose speed drifts: the order of interleaved rounds
 * (alternating which mode goes first, so drift cancels), medians, and a bootstrap interval of a ratio of medians.
 */

/** The modes' order in round `round`: as given in even rounds, reversed in odd ones (A B, B A, …). */
export function roundOrder<T>(modes: readonly T[], round: number): T[] {
  return round % 2 === 0 ? [...modes] : [...modes].reverse();
}

export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export const median = (xs: readonly number[]): number => quantile(xs, 0.5);
export const r3 = (x: number): number => Number(x.toFixed(3));
export const r4 = (x: number): number => Number(x.toFixed(4));

/** lowbias32 (Chris Wellons) on uint32. */
export function hash32(x: number): number {
  x >>>= 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x;
}

/**
 * Percentile bootstrap of median(b) / median(a) that resamples whole A/B pairs (2000 resamples, fixed seed): runs
 * differ more between each other than steps within a run, so resampling single steps would understate the spread.
 */
export function bootstrapRatioCI(pairs: ReadonlyArray<{ a: readonly number[]; b: readonly number[] }>, level = 0.95): [number, number] {
  let state = 0x9e3779b9;
  const rand = (n: number): number => {
    state = hash32(state + 1);
    return state % n;
  };
  const ratios: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const picked = pairs.map(() => pairs[rand(pairs.length)]!);
    ratios.push(median(picked.flatMap((p) => p.b)) / median(picked.flatMap((p) => p.a)));
  }
  return [r4(quantile(ratios, (1 - level) / 2)), r4(quantile(ratios, 1 - (1 - level) / 2))];
}
