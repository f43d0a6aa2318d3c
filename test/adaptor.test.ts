import { describe, expect, it } from "vitest";
import { AdaptorError, type AdaptorFn, type AdaptorSpec, describeSelector, toAdaptorSpec } from "../src/adaptor/index.js";

function adaptorError(fn: () => unknown): AdaptorError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AdaptorError);
    return e as AdaptorError;
  }
  throw new Error("expected an AdaptorError");
}

const out = (...path: (string | number | { slice: [number | null, number | null, number | null] })[]) => ({
  from: "out" as const,
  path,
});
const batch = (...path: (string | number)[]) => ({ from: "batch" as const, path });

describe("traced adaptors", () => {
  it("records a DESIGN-style adaptor", () => {
    const adaptor: AdaptorFn = (b, o) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask });
    expect(toAdaptorSpec(adaptor)).toEqual({
      kind: "select",
      keys: { logits: out("logits"), hidden: out("hidden_states"), inputs_mask: batch("attention_mask") },
    });
  });

  it("records tuple indices, negative indices and .at()", () => {
    const spec = toAdaptorSpec((b, o) => ({
      logits: o[1],
      hidden: o[2],
      attention: o.attentions.at(-1),
      labels: b[-1],
      losses: o[0],
    }));
    expect(spec).toEqual({
      kind: "select",
      keys: { logits: out(1), hidden: out(2), attention: out("attentions", -1), labels: batch(-1), losses: out(0) },
    });
  });

  it("records slices", () => {
    const spec = toAdaptorSpec((_b, o) => ({
      hidden: o.hidden_states.slice(1),
      attention: o.attentions.slice(-4, -1),
      logits: o.all_logits.slice(),
    }));
    expect(spec).toEqual({
      kind: "select",
      keys: {
        hidden: out("hidden_states", { slice: [1, null, null] }),
        attention: out("attentions", { slice: [-4, -1, null] }),
        logits: out("all_logits", { slice: [null, null, null] }),
      },
    });
  });

  it("records lists (QA start/end logits, chosen layers)", () => {
    const spec = toAdaptorSpec((b, o) => ({
      logits: [o.start_logits, o.end_logits],
      logits_mask: [b.attention_mask, b.attention_mask],
      hidden: [o.hidden_states[0], o.hidden_states[4], o.hidden_states.at(-1)],
    }));
    expect(spec).toEqual({
      kind: "select",
      keys: {
        logits: { list: [out("start_logits"), out("end_logits")] },
        logits_mask: { list: [batch("attention_mask"), batch("attention_mask")] },
        hidden: { list: [out("hidden_states", 0), out("hidden_states", 4), out("hidden_states", -1)] },
      },
    });
    if (spec.kind === "select" && spec.keys.hidden) {
      expect(describeSelector(spec.keys.hidden)).toBe("[out.hidden_states[0], out.hidden_states[4], out.hidden_states.at(-1)]");
    }
  });

  it("selects the whole output and skips undefined keys", () => {
    expect(toAdaptorSpec((_b, o) => ({ logits: o, labels: undefined }))).toEqual({
      kind: "select",
      keys: { logits: out() },
    });
  });

  it("is JSON", () => {
    const spec = toAdaptorSpec((b, o) => ({ logits: o.logits, hidden: o.hidden_states.slice(1), inputs_mask: b.attention_mask }));
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
  });

  const computing: [string, AdaptorFn, RegExp][] = [
    ["arithmetic", (_b, o) => ({ logits: o.logits / 2 }), /out\.logits: the adaptor does arithmetic or a comparison/],
    ["comparison", (_b, o) => ({ logits: o.logits > 0 ? o.logits : o.other }), /out\.logits: the adaptor does arithmetic or a comparison/],
    ["string coercion", (_b, o) => ({ logits: `${o.logits}` }), /converts it to a string/],
    ["String()", (_b, o) => ({ logits: String(o.logits) }), /converts it to a string/],
    ["method call", (_b, o) => ({ logits: o.logits.softmax(-1) }), /out\.logits: the adaptor calls \.softmax\(\) on it/],
    ["array method", (_b, o) => ({ hidden: o.hidden_states.map((h: unknown) => h) }), /calls \.map\(\) on it/],
    ["in", (_b, o) => ("logits" in o ? { logits: o.logits } : {}), /tests a key with `in`/],
    ["iteration", (_b, o) => ({ hidden: [...o.hidden_states] }), /out\.hidden_states: the adaptor iterates over it/],
    [
      "destructuring",
      (_b, o) => {
        const [first] = o;
        return { logits: first };
      },
      /iterates over it/,
    ],
    ["object spread", (_b, o) => ({ ...o }), /lists its keys/],
    ["JSON", (_b, o) => ({ logits: JSON.stringify(o.logits) }), /serialises it/],
    ["length", (_b, o) => ({ hidden: o.hidden_states.slice(0, o.hidden_states.length - 1) }), /reads its \.length/],
    ["computed index", (_b, o) => ({ hidden: o.hidden_states.at(o.n) }), /integer literals only/],
    [
      "mutation",
      (_b, o) => {
        o.logits = 1;
        return { logits: o.logits };
      },
      /assigns to it/,
    ],
  ];
  for (const [what, fn, pattern] of computing) {
    it(`rejects computing adaptors: ${what}`, () => {
      const e = adaptorError(() => toAdaptorSpec(fn));
      expect(e.message).toMatch(pattern);
      expect(e.message).toContain("Adaptors only select outputs");
      expect(e.message).toContain('{ python: "my_adaptors.py:adaptor" }');
    });
  }

  it("names the key of a returned value that was not read from batch or out", () => {
    const e = adaptorError(() => toAdaptorSpec((_b, o) => ({ logits: o.logits, labels: [0, 1] })));
    expect(e.key).toBe("labels");
    expect(e.message).toContain("adaptor key 'labels': labels[0] is 0, not something read from batch or out");
    expect(e.message).toContain('{ python: "my_adaptors.py:adaptor" }');
  });

  it("is never treated as a thenable, and rejects async adaptors", () => {
    let awaited: unknown;
    toAdaptorSpec((_b, o) => {
      awaited = (o.logits as { then?: unknown }).then;
      return { logits: o.logits };
    });
    expect(awaited).toBeUndefined();
    const asyncAdaptor = (async (_b: unknown, o: { logits: unknown }) => ({ logits: await o.logits })) as unknown as AdaptorFn;
    expect(adaptorError(() => toAdaptorSpec(asyncAdaptor)).message).toContain("synchronous");
  });

  it("rejects an unknown key with a suggestion", () => {
    const e = adaptorError(() => toAdaptorSpec((b, o) => ({ logits: o.logits, input_mask: b.attention_mask })));
    expect(e.key).toBe("input_mask");
    expect(e.message).toContain("unknown adaptor key 'input_mask' (did you mean inputs_mask?)");
    expect(e.message).toContain("allowed keys: logits, logits_mask, labels, losses, hidden, attention, inputs_mask");
    expect(adaptorError(() => toAdaptorSpec((_b, o) => ({ inputsMask: o.mask }))).message).toContain("did you mean inputs_mask?");
  });

  it("rejects returning out itself, non-objects and empty results", () => {
    expect(adaptorError(() => toAdaptorSpec((_b, o) => o)).message).toContain("returned out itself");
    expect(adaptorError(() => toAdaptorSpec((() => [1]) as unknown as AdaptorFn)).message).toContain("must return an object");
    expect(adaptorError(() => toAdaptorSpec(() => ({}))).message).toContain("selects nothing");
  });

  it("wraps other errors thrown while tracing", () => {
    const e = adaptorError(() =>
      toAdaptorSpec(() => {
        throw new TypeError("boom");
      }),
    );
    expect(e.message).toContain("boom");
    expect(e.cause).toBeInstanceOf(TypeError);
  });
});

describe("hand-written and Python adaptors", () => {
  it("accepts and validates a hand-written spec", () => {
    const spec: AdaptorSpec = {
      kind: "select",
      keys: {
        logits: out("logits"),
        hidden: out("hidden_states", { slice: [0, null, 2] }),
        inputs_mask: batch("attention_mask"),
      },
    };
    expect(toAdaptorSpec(spec)).toEqual(spec);
  });

  it("names the problem in a bad hand-written spec", () => {
    const typo = { kind: "select", keys: { input_mask: batch("attention_mask"), logits: out("logits") } } as unknown as AdaptorSpec;
    expect(adaptorError(() => toAdaptorSpec(typo)).message).toContain(
      "unknown key 'input_mask' in AdaptorSpec.keys (did you mean 'inputs_mask'?)",
    );
    const badFrom = { kind: "select", keys: { logits: { from: "outs", path: ["logits"] } } } as unknown as AdaptorSpec;
    expect(adaptorError(() => toAdaptorSpec(badFrom)).message).toContain(
      'keys.logits.from: received "outs"; expected one of "out", "batch"',
    );
    const zeroStep = { kind: "select", keys: { hidden: out("hidden_states", { slice: [0, null, 0] }) } } as AdaptorSpec;
    expect(adaptorError(() => toAdaptorSpec(zeroStep)).message).toContain("slice step cannot be zero");
    const badKind = { kind: "selct", keys: {} } as unknown as AdaptorSpec;
    expect(adaptorError(() => toAdaptorSpec(badKind)).message).toContain('kind: received "selct"');
    const empty = { kind: "select", keys: {} } as AdaptorSpec;
    expect(adaptorError(() => toAdaptorSpec(empty)).message).toContain("at least one key");
  });

  it("accepts Python adaptor references", () => {
    expect(toAdaptorSpec({ python: "my_adaptors.py:adaptor" })).toEqual({ kind: "python", ref: "my_adaptors.py:adaptor" });
    expect(toAdaptorSpec({ kind: "python", ref: "lib/adapt.py:teacher_adaptor" })).toEqual({
      kind: "python",
      ref: "lib/adapt.py:teacher_adaptor",
    });
    expect(adaptorError(() => toAdaptorSpec({ python: "my_adaptors:adaptor" })).message).toContain("my_adaptors.py:adaptor");
    expect(adaptorError(() => toAdaptorSpec({ python: "a.py:f", extra: 1 } as unknown as { python: string })).message).toContain("extra");
  });

  it("rejects anything else", () => {
    expect(adaptorError(() => toAdaptorSpec(42 as unknown as AdaptorFn)).message).toContain("an adaptor is a function");
  });
});
