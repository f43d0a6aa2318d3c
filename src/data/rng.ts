/**
 * A small seeded pseudo-random generator for the data augmentations (TextBrewer's `data_utils` draws from
 * numpy's global RNG; here every draw comes from an explicit, resumable generator).
 *
 * Algorithm: xoshiro128** 1.1 (Blackman & Vigna), 128 bits of state as four unsigned 32-bit words, period
 * 2^128 − 1. The state is filled from the seed with the splitmix32-style mixer below. `random()` takes two
 * 32-bit outputs and builds a double with 53 random bits, so it is uniform on [0, 1) with the full double
 * resolution. Not cryptographic.
 */

/** A serialisable generator state, as returned by `state()` and accepted by `setState()`. */
export interface RngState {
  readonly algorithm: "xoshiro128**";
  /** The four state words, each an unsigned 32-bit integer, not all zero. */
  readonly s: readonly [number, number, number, number];
}

export interface Rng {
  /** A uniform double in [0, 1) with 53 random bits (two 32-bit draws). */
  random(): number;
  /** A uniform integer in [0, n), without modulo bias; `n` is an integer in [1, 2^32]. */
  int(n: number): number;
  /**
   * A categorical draw: index i with probability weights[i] / Σweights. Weights must be finite and ≥ 0 with a
   * positive sum; a zero-weight index is never returned. Uses one `random()` draw.
   */
  choice(weights: readonly number[]): number;
  /** Shuffles `array` in place (Fisher–Yates, `int(i + 1)` for i from the end) and returns it. */
  shuffle<T>(array: T[]): T[];
  /** The current state: restoring it with `setState` replays the same stream from here. */
  state(): RngState;
  setState(state: RngState): void;
  /** An independent generator that starts from this one's current state. */
  clone(): Rng;
}

const ALGORITHM = "xoshiro128**";
const TWO_POW_32 = 2 ** 32;
const TWO_POW_53 = 2 ** 53;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** splitmix32-style finaliser (the lowbias32 constants), a bijection on 32-bit words. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

class Xoshiro128 implements Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(state: RngState) {
    this.setState(state);
  }

  /** One raw 32-bit output. */
  private next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  random(): number {
    const hi = this.next() >>> 5; // 27 bits
    const lo = this.next() >>> 6; // 26 bits
    return (hi * 2 ** 26 + lo) / TWO_POW_53;
  }

  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`int(n) needs an integer n in [1, 2^32], got ${String(n)}`);
    }
    // Rejection sampling: accept draws below the largest multiple of n that fits in 2^32.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.next();
      if (x < limit) return x % n;
    }
  }

  choice(weights: readonly number[]): number {
    let total = 0;
    for (const [i, w] of weights.entries()) {
      if (!Number.isFinite(w) || w < 0) {
        throw new RangeError(`choice: weight ${i} must be a finite number >= 0, got ${String(w)}`);
      }
      total += w;
    }
    if (!(total > 0)) throw new RangeError("choice: the weights must have a positive sum");
    const u = this.random() * total;
    let cumulative = 0;
    let last = -1;
    for (const [i, w] of weights.entries()) {
      if (w <= 0) continue;
      cumulative += w;
      last = i;
      if (u < cumulative) return i;
    }
    return last; // rounding left u at or past the final cumulative sum
  }

  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i] as T;
      array[i] = array[j] as T;
      array[j] = tmp;
    }
    return array;
  }

  state(): RngState {
    return { algorithm: ALGORITHM, s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0] };
  }

  setState(state: RngState): void {
    const words = checkState(state);
    this.s0 = words[0] | 0;
    this.s1 = words[1] | 0;
    this.s2 = words[2] | 0;
    this.s3 = words[3] | 0;
  }

  clone(): Rng {
    return new Xoshiro128(this.state());
  }
}

function checkState(state: unknown): readonly [number, number, number, number] {
  const bad = (why: string): never => {
    throw new TypeError(`invalid RNG state: ${why}`);
  };
  if (typeof state !== "object" || state === null) return bad("expected an object { algorithm, s }");
  const { algorithm, s } = state as { algorithm?: unknown; s?: unknown };
  if (algorithm !== ALGORITHM) return bad(`algorithm must be '${ALGORITHM}', got ${JSON.stringify(algorithm)}`);
  if (!Array.isArray(s) || s.length !== 4) return bad("s must be an array of four 32-bit words");
  for (const w of s as unknown[]) {
    if (typeof w !== "number" || !Number.isInteger(w) || w < 0 || w >= TWO_POW_32) {
      return bad(`each word of s must be an integer in [0, 2^32), got ${String(w)}`);
    }
  }
  const words = s as [number, number, number, number];
  if (words.every((w) => w === 0)) return bad("the all-zero state is not allowed");
  return words;
}

/** The state that `seededRng(seed)` starts from. */
function seedState(seed: number): RngState {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`the seed must be a safe integer, got ${String(seed)}`);
  const lo = seed >>> 0; // low 32 bits (two's complement for negative seeds)
  const hi = Math.floor(seed / TWO_POW_32) >>> 0;
  let x = mix32(lo ^ mix32((hi + 0x6a09e667) >>> 0));
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) >>> 0;
    words.push(mix32(x));
  }
  if (!words.some((w) => w !== 0)) words[0] = 1;
  return { algorithm: ALGORITHM, s: words as [number, number, number, number] };
}

/** A generator seeded with `seed` (any safe integer); the same seed always gives the same stream. */
export function seededRng(seed: number): Rng {
  return new Xoshiro128(seedState(seed));
}

/** A generator resumed from a saved `state()`. */
export function rngFromState(state: RngState): Rng {
  return new Xoshiro128(state);
}
