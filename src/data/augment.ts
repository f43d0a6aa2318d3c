/**
 * TextBrewer's `data_utils`: token-level augmentations for building distillation data. Every function takes a
 * token list (strings, ids or any other token type), never modifies it, and returns a new list. Randomness comes
 * from the `rng` option (see `seededRng`), not from a global generator, so a seed reproduces the output.
 *
 * The semantics (which draws happen, in which order relative to the tokens, and what each outcome does) follow
 * TextBrewer 0.2.1; the streams differ from numpy's, so the same seed does not give TextBrewer's exact output.
 */
import type { Rng } from "./rng.js";

export interface MaskingOptions<M> {
  /** Probability of replacing each token (default 0.1). */
  p?: number;
  /** The replacement token (default "[MASK]"; pass e.g. the mask id for numeric tokens). */
  mask?: M;
  rng: Rng;
}

export interface DeletingOptions {
  /** Probability of dropping each token (default 0.1): each one is kept with probability 1 − p. */
  p?: number;
  rng: Rng;
}

export interface NGramSamplingOptions {
  /** Probabilities of the span lengths (default [0.2, 0.2, 0.2, 0.2, 0.2]); they must sum to 1. */
  pNg?: readonly number[];
  /** The span lengths to choose from (default [1, 2, 3, 4, 5]). */
  lNg?: readonly number[];
  rng: Rng;
}

export interface ShortDisorderOptions {
  /**
   * Probabilities of the five choices at each position (default [0.9, 0.1, 0, 0, 0]); they must sum to 1.
   * 0: keep; 1: ab → ba; 2: abc → cba; 3: abc → cab; 4: abc → bca.
   */
  p?: readonly number[];
  rng: Rng;
}

export interface LongDisorderOptions {
  /** Probability of swapping the two halves of the span starting at each position (default 0.1). */
  p?: number;
  /**
   * The span length (default 20). When its integer part is ≤ 1 it is a fraction of the token count instead (as
   * in TextBrewer, so 1 means the whole sequence and even 1.5 means 1.5 × the token count). It is then
   * truncated to an integer and rounded up to an even number.
   */
  length?: number;
  rng: Rng;
}

/** numpy's tolerance for probabilities that should sum to 1. */
const PROB_SUM_TOLERANCE = Math.sqrt(Number.EPSILON);

function requireRng(rng: unknown, fn: string): Rng {
  if (
    typeof rng !== "object" ||
    rng === null ||
    typeof (rng as Rng).random !== "function" ||
    typeof (rng as Rng).choice !== "function" ||
    typeof (rng as Rng).int !== "function"
  ) {
    throw new TypeError(`${fn}: options.rng must be a generator such as seededRng(seed)`);
  }
  return rng as Rng;
}

function requireTokens<T>(tokens: readonly T[], fn: string): readonly T[] {
  if (!Array.isArray(tokens)) throw new TypeError(`${fn}: tokens must be an array`);
  return tokens;
}

function requireNumber(value: number, fn: string, name: string): number {
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`${fn}: ${name} must be a number, got ${String(value)}`);
  }
  return value;
}

function requireProbabilities(p: readonly number[], fn: string, name: string, count?: number): readonly number[] {
  if (!Array.isArray(p) || p.length === 0) throw new TypeError(`${fn}: ${name} must be a non-empty array`);
  if (count !== undefined && p.length !== count) {
    throw new RangeError(`${fn}: ${name} needs ${count} probabilities, got ${p.length}`);
  }
  let sum = 0;
  for (const [i, v] of p.entries()) {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`${fn}: ${name}[${i}] must be a probability >= 0, got ${String(v)}`);
    }
    sum += v;
  }
  if (Math.abs(sum - 1) > PROB_SUM_TOLERANCE) {
    throw new RangeError(`${fn}: ${name} must sum to 1, got ${sum}`);
  }
  return p;
}

/** Replaces each token with `mask` with probability `p` (one `random()` draw per token). */
export function masking<T, M = string>(tokens: readonly T[], options: MaskingOptions<M>): (T | M)[] {
  const fn = "masking";
  requireTokens(tokens, fn);
  const rng = requireRng(options?.rng, fn);
  const p = requireNumber(options.p ?? 0.1, fn, "p");
  const mask = (options.mask === undefined ? "[MASK]" : options.mask) as M;
  const outputs: (T | M)[] = tokens.slice();
  for (let i = 0; i < tokens.length; i++) {
    if (rng.random() < p) outputs[i] = mask;
  }
  return outputs;
}

/** Keeps each token with probability 1 − p (one `random()` draw per token). */
export function deleting<T>(tokens: readonly T[], options: DeletingOptions): T[] {
  const fn = "deleting";
  requireTokens(tokens, fn);
  const rng = requireRng(options?.rng, fn);
  const p = requireNumber(options.p ?? 0.1, fn, "p");
  if (p < 0 || p > 1) throw new RangeError(`deleting: p must be in [0, 1], got ${p}`);
  const keep = 1 - p;
  return tokens.filter(() => rng.random() < keep);
}

/**
 * Returns a contiguous span of the tokens: its length is drawn from `lNg` with probabilities `pNg`, then its
 * start uniformly from every position where it fits. As in TextBrewer (numpy's `randint` raises there), a drawn
 * length longer than the token list is an error (RangeError).
 */
export function nGramSampling<T>(tokens: readonly T[], options: NGramSamplingOptions): T[] {
  const fn = "nGramSampling";
  requireTokens(tokens, fn);
  const rng = requireRng(options?.rng, fn);
  const lNg = options.lNg ?? [1, 2, 3, 4, 5];
  const pNg = requireProbabilities(options.pNg ?? [0.2, 0.2, 0.2, 0.2, 0.2], fn, "pNg", lNg.length);
  for (const [i, l] of lNg.entries()) {
    if (!Number.isSafeInteger(l) || l < 0) {
      throw new RangeError(`${fn}: lNg[${i}] must be a span length (an integer >= 0), got ${String(l)}`);
    }
  }
  const spanLength = lNg[rng.choice(pNg)] as number;
  const starts = tokens.length - spanLength + 1;
  if (starts < 1) {
    throw new RangeError(`${fn}: drew span length ${spanLength} but there are only ${tokens.length} tokens`);
  }
  const start = rng.int(starts);
  return tokens.slice(start, start + spanLength);
}

/**
 * Local reordering. Walking i from 0 while i < len − 1, one choice is drawn from `p` at each stop:
 * 0 keeps token i (i += 1); 1 swaps tokens i, i+1 (ab → ba, i += 2); 2, 3 and 4 rewrite tokens i..i+2 as
 * cba, cab and bca (i += 3). At i = len − 2 only two tokens are left, so every non-zero choice is a pair swap.
 */
export function shortDisorder<T>(tokens: readonly T[], options: ShortDisorderOptions): T[] {
  const fn = "shortDisorder";
  requireTokens(tokens, fn);
  const rng = requireRng(options?.rng, fn);
  const p = requireProbabilities(options.p ?? [0.9, 0.1, 0, 0, 0], fn, "p", 5);
  const out = tokens.slice();
  const l = out.length;
  const at = (k: number): T => out[k] as T;
  let i = 0;
  while (i < l - 1) {
    const choice = rng.choice(p);
    if (choice !== 0 && i === l - 2) {
      [out[i], out[i + 1]] = [at(i + 1), at(i)];
      i += 2;
    } else if (choice === 1) {
      [out[i], out[i + 1]] = [at(i + 1), at(i)];
      i += 2;
    } else if (choice === 2) {
      [out[i], out[i + 2]] = [at(i + 2), at(i)];
      i += 3;
    } else if (choice === 3) {
      [out[i], out[i + 1], out[i + 2]] = [at(i + 2), at(i), at(i + 1)];
      i += 3;
    } else if (choice === 4) {
      [out[i], out[i + 1], out[i + 2]] = [at(i + 1), at(i + 2), at(i)];
      i += 3;
    } else {
      i += 1;
    }
  }
  return out;
}

/** The span length `longDisorder` uses for `tokenCount` tokens and the `length` option. */
export function longDisorderSpan(tokenCount: number, length: number): number {
  let span = length;
  if (Math.trunc(span) <= 1) span = tokenCount * span;
  return Math.floor((Math.trunc(span) + 1) / 2) * 2;
}

/**
 * Swaps the two halves of spans. With L the span length (see `LongDisorderOptions.length`), walking i from 0
 * while i ≤ len − L: with probability p tokens i..i+L/2−1 and i+L/2..i+L−1 trade places and i += L, otherwise
 * i += 1. When L rounds to 0 the tokens come back unchanged without drawing (TextBrewer would spin there).
 */
export function longDisorder<T>(tokens: readonly T[], options: LongDisorderOptions): T[] {
  const fn = "longDisorder";
  requireTokens(tokens, fn);
  const rng = requireRng(options?.rng, fn);
  const p = requireNumber(options.p ?? 0.1, fn, "p");
  const length = requireNumber(options.length ?? 20, fn, "length");
  if (!Number.isFinite(length) || length < 0) {
    throw new RangeError(`${fn}: length must be a finite number >= 0, got ${length}`);
  }
  const out = tokens.slice();
  const span = longDisorderSpan(out.length, length);
  if (span === 0) return out;
  const half = span / 2;
  let i = 0;
  while (i <= out.length - span) {
    if (rng.random() < p) {
      const first = out.slice(i, i + half);
      out.copyWithin(i, i + half, i + span);
      for (let k = 0; k < half; k++) out[i + half + k] = first[k] as T;
      i += span;
    } else {
      i += 1;
    }
  }
  return out;
}
