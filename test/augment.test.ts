import { describe, expect, it } from "vitest";
import {
  deleting,
  longDisorder,
  longDisorderSpan,
  masking,
  nGramSampling,
  type Rng,
  rngFromState,
  seededRng,
  shortDisorder,
} from "../src/data/index.js";

const letters = (s: string): string[] => s.split("");
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** An Rng that replays scripted draws, to pin down exactly what each outcome does. */
type ScriptedRng = Rng & { calls: { random: number; choice: number } };
function scripted(draws: { random?: number[]; choice?: number[] }): ScriptedRng {
  const random = [...(draws.random ?? [])];
  const choice = [...(draws.choice ?? [])];
  const calls = { random: 0, choice: 0 };
  const take = (queue: number[], what: string): number => {
    const v = queue.shift();
    if (v === undefined) throw new Error(`scripted rng ran out of ${what} draws`);
    return v;
  };
  return {
    calls,
    random: () => {
      calls.random++;
      return take(random, "random");
    },
    choice: () => {
      calls.choice++;
      return take(choice, "choice");
    },
    int: () => {
      throw new Error("int not scripted");
    },
    shuffle: <T>(a: T[]) => a,
    state: () => ({ algorithm: "xoshiro128**", s: [1, 0, 0, 0] }),
    setState: () => {},
    clone() {
      return this;
    },
  };
}

/** |observed − expected| ≤ 4σ for a binomial count. */
function expectBinomial(count: number, n: number, p: number): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(count - n * p)).toBeLessThanOrEqual(4 * sigma);
}

describe("rng", () => {
  it("is deterministic for a seed and differs between seeds", () => {
    const a = seededRng(42);
    const b = seededRng(42);
    const c = seededRng(43);
    const xs = range(10).map(() => a.random());
    expect(range(10).map(() => b.random())).toEqual(xs);
    expect(range(10).map(() => c.random())).not.toEqual(xs);
    for (const x of xs) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });

  it("accepts any safe integer seed and rejects others", () => {
    expect(seededRng(-1).random()).not.toBe(seededRng(2 ** 32 - 1 + 2 ** 32).random());
    expect(seededRng(2 ** 40).random()).not.toBe(seededRng(0).random());
    expect(() => seededRng(1.5)).toThrow(RangeError);
    expect(() => seededRng(Number.NaN)).toThrow(RangeError);
  });

  it("resumes the same stream from state()/setState(), including through JSON", () => {
    const rng = seededRng(7);
    for (let i = 0; i < 5; i++) rng.random();
    const saved = JSON.parse(JSON.stringify(rng.state()));
    const expected = [rng.random(), rng.int(10), rng.choice([1, 2, 3]), rng.random()];
    rng.setState(saved);
    expect([rng.random(), rng.int(10), rng.choice([1, 2, 3]), rng.random()]).toEqual(expected);
    const other = seededRng(999);
    other.setState(saved);
    expect(other.random()).toBe(expected[0]);
    expect(rngFromState(saved).random()).toBe(expected[0]);
    const clone = rng.clone();
    expect(clone.random()).toBe(rng.random());
  });

  it("rejects invalid states", () => {
    const rng = seededRng(1);
    expect(() => rng.setState({ algorithm: "xoshiro128**", s: [0, 0, 0, 0] })).toThrow(/all-zero/);
    expect(() => rng.setState({ algorithm: "xoshiro128**", s: [1, 2, 3] } as never)).toThrow(TypeError);
    expect(() => rng.setState({ algorithm: "mt19937", s: [1, 2, 3, 4] } as never)).toThrow(TypeError);
    expect(() => rng.setState({ algorithm: "xoshiro128**", s: [1, 2, 3, 2 ** 32] })).toThrow(TypeError);
  });

  it("int(n) covers [0, n) uniformly", () => {
    const rng = seededRng(3);
    const counts = new Array<number>(6).fill(0);
    const n = 60_000;
    for (let i = 0; i < n; i++) counts[rng.int(6)]!++;
    for (const c of counts) expectBinomial(c, n, 1 / 6);
    expect(rng.int(1)).toBe(0);
    expect(() => rng.int(0)).toThrow(RangeError);
    expect(() => rng.int(2.5)).toThrow(RangeError);
  });

  it("choice draws by weight and never picks a zero weight", () => {
    const rng = seededRng(5);
    const counts = [0, 0, 0, 0];
    const n = 40_000;
    for (let i = 0; i < n; i++) counts[rng.choice([0.5, 0, 1.5, 2])]!++;
    expect(counts[1]).toBe(0);
    expectBinomial(counts[0]!, n, 0.125);
    expectBinomial(counts[2]!, n, 0.375);
    expectBinomial(counts[3]!, n, 0.5);
    expect(() => rng.choice([0, 0])).toThrow(RangeError);
    expect(() => rng.choice([1, -1])).toThrow(RangeError);
  });

  it("shuffle is an in-place, seeded permutation", () => {
    const a = range(50);
    const out = seededRng(11).shuffle(a);
    expect(out).toBe(a);
    expect([...a].sort((x, y) => x - y)).toEqual(range(50));
    expect(a).not.toEqual(range(50));
    expect(seededRng(11).shuffle(range(50))).toEqual(a);
  });
});

describe("masking", () => {
  it("masks each token with probability p (20k tokens, within 4 sigma)", () => {
    const tokens = range(20_000).map((i) => `t${i}`);
    const out = masking(tokens, { rng: seededRng(1) });
    expect(out).toHaveLength(tokens.length);
    const masked = out.filter((t) => t === "[MASK]").length;
    expectBinomial(masked, tokens.length, 0.1);
    expect(out.every((t, i) => t === "[MASK]" || t === tokens[i])).toBe(true);
    expectBinomial(masking(tokens, { p: 0.3, rng: seededRng(2) }).filter((t) => t === "[MASK]").length, 20_000, 0.3);
  });

  it("works on ids with a numeric mask and leaves the input alone", () => {
    const ids = range(1000).map((i) => i + 1000);
    const copy = [...ids];
    const out: number[] = masking(ids, { p: 0.5, mask: 103, rng: seededRng(4) });
    expect(ids).toEqual(copy);
    expect(out.filter((t) => t === 103).length).toBeGreaterThan(400);
    expect(masking(ids, { p: 0, rng: seededRng(4) })).toEqual(ids);
    expect(masking(ids, { p: 1, mask: -1, rng: seededRng(4) }).every((t) => t === -1)).toBe(true);
  });

  it("is deterministic for a seed", () => {
    const tokens = letters("the quick brown fox jumps over the lazy dog");
    expect(masking(tokens, { p: 0.3, rng: seededRng(9) })).toEqual(masking(tokens, { p: 0.3, rng: seededRng(9) }));
  });
});

describe("deleting", () => {
  it("keeps each token with probability 1 - p, in order", () => {
    const tokens = range(20_000);
    const out = deleting(tokens, { rng: seededRng(1) });
    expectBinomial(out.length, tokens.length, 0.9);
    expect(out.every((t, i) => i === 0 || t > out[i - 1]!)).toBe(true);
    expectBinomial(deleting(tokens, { p: 0.6, rng: seededRng(2) }).length, 20_000, 0.4);
  });

  it("is deterministic, handles the extremes and rejects p outside [0, 1]", () => {
    const tokens = letters("abcdefghij");
    expect(deleting(tokens, { p: 0.5, rng: seededRng(3) })).toEqual(deleting(tokens, { p: 0.5, rng: seededRng(3) }));
    expect(deleting(tokens, { p: 0, rng: seededRng(3) })).toEqual(tokens);
    expect(deleting(tokens, { p: 1, rng: seededRng(3) })).toEqual([]);
    expect(() => deleting(tokens, { p: 1.5, rng: seededRng(3) })).toThrow(RangeError);
  });
});

describe("nGramSampling", () => {
  it("returns a contiguous span whose length is one of lNg", () => {
    const rng = seededRng(1);
    const tokens = range(12);
    const lengths = new Map<number, number>();
    for (let trial = 0; trial < 5000; trial++) {
      const span = nGramSampling(tokens, { rng });
      const ok = [1, 2, 3, 4, 5].includes(span.length) && span.every((t, k) => t === span[0]! + k) && span[0]! >= 0 && span.at(-1)! < 12;
      if (!ok) expect.fail(`not a contiguous span of length 1..5: [${span.join(", ")}]`);
      lengths.set(span.length, (lengths.get(span.length) ?? 0) + 1);
    }
    for (const l of [1, 2, 3, 4, 5]) expectBinomial(lengths.get(l) ?? 0, 5000, 0.2);
  });

  it("reaches every start position, including the last one", () => {
    const rng = seededRng(2);
    const starts = new Set<string>();
    for (let trial = 0; trial < 300; trial++) {
      starts.add(nGramSampling(letters("abcde"), { pNg: [1], lNg: [3], rng }).join(""));
    }
    expect([...starts].sort()).toEqual(["abc", "bcd", "cde"]);
  });

  it("follows pNg, is deterministic, and rejects bad probabilities or a span longer than the tokens", () => {
    const tokens = range(10);
    const opts = { pNg: [0, 1], lNg: [2, 7] };
    expect(nGramSampling(tokens, { ...opts, rng: seededRng(5) })).toHaveLength(7);
    expect(nGramSampling(tokens, { rng: seededRng(6) })).toEqual(nGramSampling(tokens, { rng: seededRng(6) }));
    expect(() => nGramSampling(tokens, { pNg: [0.5, 0.6], lNg: [1, 2], rng: seededRng(1) })).toThrow(/sum to 1/);
    expect(() => nGramSampling(tokens, { pNg: [1], lNg: [1, 2], rng: seededRng(1) })).toThrow(RangeError);
    expect(() => nGramSampling(range(3), { pNg: [1], lNg: [4], rng: seededRng(1) })).toThrow(RangeError);
    expect(nGramSampling(range(4), { pNg: [1], lNg: [4], rng: seededRng(1) })).toEqual(range(4));
  });
});

describe("shortDisorder", () => {
  const swapsOnly = [0, 1, 0, 0, 0];

  it("with p=[0,1,0,0,0] swaps consecutive pairs, leaving an odd last token", () => {
    expect(shortDisorder(letters("abcdef"), { p: swapsOnly, rng: seededRng(1) })).toEqual(letters("badcfe"));
    expect(shortDisorder(letters("abcde"), { p: swapsOnly, rng: seededRng(1) })).toEqual(letters("badce"));
    expect(shortDisorder(letters("ab"), { p: swapsOnly, rng: seededRng(1) })).toEqual(letters("ba"));
    expect(shortDisorder(letters("a"), { p: swapsOnly, rng: seededRng(1) })).toEqual(letters("a"));
    expect(shortDisorder([], { p: swapsOnly, rng: seededRng(1) })).toEqual([]);
  });

  it("choices 2, 3 and 4 rewrite abc as cba, cab and bca and advance by 3", () => {
    expect(shortDisorder(letters("abc"), { p: [0, 0, 1, 0, 0], rng: seededRng(1) })).toEqual(letters("cba"));
    expect(shortDisorder(letters("abc"), { p: [0, 0, 0, 1, 0], rng: seededRng(1) })).toEqual(letters("cab"));
    expect(shortDisorder(letters("abc"), { p: [0, 0, 0, 0, 1], rng: seededRng(1) })).toEqual(letters("bca"));
    expect(shortDisorder(letters("abcdef"), { p: [0, 0, 0, 1, 0], rng: seededRng(1) })).toEqual(letters("cabfde"));
    // Length 4: the triple at 0 moves i to 3 = len - 1, so the loop stops and 'd' stays.
    expect(shortDisorder(letters("abcd"), { p: [0, 0, 1, 0, 0], rng: seededRng(1) })).toEqual(letters("cbad"));
  });

  it("at i = len - 2 any non-zero choice swaps the last pair", () => {
    // Length 5: the triple at 0 moves i to 3 = len - 2, where the triple choice becomes a pair swap.
    expect(shortDisorder(letters("abcde"), { p: [0, 0, 1, 0, 0], rng: seededRng(1) })).toEqual(letters("cbaed"));
    expect(shortDisorder(letters("abcde"), { p: [0, 0, 0, 0, 1], rng: seededRng(1) })).toEqual(letters("bcaed"));
    for (const choice of [1, 2, 3, 4]) {
      const rng = scripted({ choice: [0, 0, choice] });
      expect(shortDisorder(letters("abcd"), { rng })).toEqual(letters("abdc"));
      expect(rng.calls.choice).toBe(3);
      expect(shortDisorder(letters("ab"), { rng: scripted({ choice: [choice] }) })).toEqual(letters("ba"));
    }
  });

  it("walks the tokens as TextBrewer does: keep +1, pair +2, triple +3, one draw per stop", () => {
    const rng = scripted({ choice: [0, 3, 2] });
    // i=0 keep; i=1 bcd -> dbc; i=4 efg -> gfe; i=7 stops.
    expect(shortDisorder(letters("abcdefg"), { rng })).toEqual(letters("adbcgfe"));
    expect(rng.calls.choice).toBe(3);
    const rng2 = scripted({ choice: [1, 0, 4, 0] });
    // i=0 ab -> ba; i=2 keep; i=3 def -> efd; i=6 keep; i=7 = len - 1 stops.
    expect(shortDisorder(letters("abcdefgh"), { rng: rng2 })).toEqual(letters("bacefdgh"));
    expect(rng2.calls.choice).toBe(4);
  });

  it("defaults to [0.9, 0.1, 0, 0, 0], is deterministic and validates p", () => {
    const tokens = range(20_000);
    const out = shortDisorder(tokens, { rng: seededRng(8) });
    expect([...out].sort((a, b) => a - b)).toEqual(tokens);
    const moved = out.filter((t, i) => t !== i).length;
    // Each stop swaps with probability 0.1; the expected share of moved tokens is 2·0.1/(1 + 0.1) ≈ 0.18.
    expect(moved / tokens.length).toBeGreaterThan(0.16);
    expect(moved / tokens.length).toBeLessThan(0.2);
    expect(shortDisorder(tokens, { rng: seededRng(8) })).toEqual(out);
    expect(() => shortDisorder(tokens, { p: [0.5, 0.5], rng: seededRng(1) })).toThrow(RangeError);
    expect(() => shortDisorder(tokens, { p: [0.5, 0.5, 0.5, 0, 0], rng: seededRng(1) })).toThrow(/sum to 1/);
  });
});

describe("longDisorder", () => {
  it("computes the span length: fraction when int(length) <= 1, truncated, rounded up to even", () => {
    expect(longDisorderSpan(100, 20)).toBe(20);
    expect(longDisorderSpan(100, 7)).toBe(8);
    expect(longDisorderSpan(100, 7.9)).toBe(8);
    expect(longDisorderSpan(100, 2)).toBe(2);
    expect(longDisorderSpan(35, 0.1)).toBe(4); // 3.5 -> 3 -> 4
    expect(longDisorderSpan(40, 0.1)).toBe(4);
    expect(longDisorderSpan(10, 0.5)).toBe(6); // 5 -> 6
    expect(longDisorderSpan(7, 1)).toBe(8); // 1 is a fraction: the whole sequence, 7 -> 8
    expect(longDisorderSpan(10, 1.5)).toBe(16); // int(1.5) = 1, so 1.5 is a fraction too
    expect(longDisorderSpan(5, 0.1)).toBe(0);
  });

  it("swaps the halves of the span where a draw succeeds and jumps past it", () => {
    const rng = scripted({ random: [0.9, 0.05, 0.9, 0.05] });
    // i=0 no; i=1 swap [1,2]<->[3,4], i=5; i=5 no; i=6 swap [6,7]<->[8,9], i=10 > 10-4 stops.
    expect(longDisorder(range(10), { p: 0.1, length: 4, rng })).toEqual([0, 3, 4, 1, 2, 5, 8, 9, 6, 7]);
    expect(rng.calls.random).toBe(4);
  });

  it("uses the fraction and round-up rules", () => {
    // length 1 = the whole sequence (8 tokens): swap its halves.
    expect(longDisorder(letters("abcdefgh"), { p: 1, length: 1, rng: seededRng(1) })).toEqual(letters("efghabcd"));
    // 0.25 of 8 tokens = 2: with p=1 every pair swaps.
    expect(longDisorder(letters("abcdefgh"), { p: 1, length: 0.25, rng: seededRng(1) })).toEqual(letters("badcfehg"));
    // 0.3 of 10 = 3 -> 4: halves of 2.
    expect(longDisorder(range(10), { p: 1, length: 0.3, rng: seededRng(1) })).toEqual([2, 3, 0, 1, 6, 7, 4, 5, 8, 9]);
    // length 3 rounds up to 4.
    expect(longDisorder(letters("abcdefgh"), { p: 1, length: 3, rng: seededRng(1) })).toEqual(letters("cdabghef"));
    // 7 tokens and length 1 -> span 8 > 7: nothing fits, nothing is drawn.
    const none = scripted({});
    expect(longDisorder(letters("abcdefg"), { p: 1, length: 1, rng: none })).toEqual(letters("abcdefg"));
    expect(none.calls.random).toBe(0);
  });

  it("returns the tokens unchanged without drawing when the span rounds to 0", () => {
    const rng = scripted({});
    expect(longDisorder(letters("abcde"), { p: 1, length: 0.1, rng })).toEqual(letters("abcde"));
    expect(rng.calls.random).toBe(0);
  });

  it("defaults to p=0.1, length=20, is deterministic and keeps every token", () => {
    const tokens = range(1000);
    const out = longDisorder(tokens, { rng: seededRng(12) });
    expect(out).not.toEqual(tokens);
    expect([...out].sort((a, b) => a - b)).toEqual(tokens);
    expect(longDisorder(tokens, { rng: seededRng(12) })).toEqual(out);
    expect(() => longDisorder(tokens, { length: -2, rng: seededRng(1) })).toThrow(RangeError);
  });
});

describe("determinism across functions", () => {
  it("one seeded stream through a pipeline reproduces exactly, and resumes from state()", () => {
    const tokens = letters("knowledge distillation for natural language processing");
    const pipeline = (rng: Rng) => [
      masking(tokens, { rng }),
      deleting(tokens, { rng }),
      nGramSampling(tokens, { rng }),
      shortDisorder(tokens, { rng }),
      longDisorder(tokens, { length: 0.2, p: 0.3, rng }),
    ];
    expect(pipeline(seededRng(2024))).toEqual(pipeline(seededRng(2024)));
    expect(pipeline(seededRng(2024))).not.toEqual(pipeline(seededRng(2025)));
    const rng = seededRng(77);
    pipeline(rng);
    const saved = rng.state();
    const next = pipeline(rng);
    rng.setState(saved);
    expect(pipeline(rng)).toEqual(next);
  });

  it("requires an rng", () => {
    expect(() => masking(["a"], {} as never)).toThrow(TypeError);
  });
});
