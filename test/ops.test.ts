import { describe, expect, expectTypeOf, it } from "vitest";
import { ProtocolError, Tensor, type Worker, WorkerError } from "../src/index.js";
import type { ModelDescription } from "../src/worker/model-handle.js";
import { checkArgs, checkOpName } from "../src/worker/ops/check.js";
import { OP_NAMES, type OpResult } from "../src/worker/ops/index.js";
import { useRealWorker } from "./helpers/fixtures.js";

describe("op catalogue", () => {
  it("fills defaults and refuses bad args with the field, the value and what is allowed", () => {
    expect(checkArgs("tokenize", { tokenizer: "t1", texts: ["a"] })).toEqual({
      tokenizer: "t1",
      texts: ["a"],
      textPairs: null,
      maxLength: null,
      padding: "longest",
      truncation: true,
    });
    const wrong = (f: () => unknown): ProtocolError => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        expect((e as ProtocolError).direction).toBe("request");
        return e as ProtocolError;
      }
      throw new Error("expected a ProtocolError");
    };
    expect(wrong(() => checkArgs("seed", { seed: "abc" })).message).toBe(
      'seed: Invalid args: seed: received "abc"; expected an integer; nothing was sent',
    );
    expect(wrong(() => checkArgs("tokenize", { tokenizer: "t1", texts: ["a"], paddng: "longest" })).message).toMatch(
      /^tokenize: Invalid args: unknown key 'paddng' in args \(did you mean 'padding'\?\)/,
    );
    expect(wrong(() => checkArgs("load_model", { path: "x", task: "sequence-clasification" })).message).toMatch(
      /task: received "sequence-clasification"; expected one of "sequence-classification", /,
    );
    expect(wrong(() => checkOpName("load_modle")).message).toMatch(
      /^call: unknown op "load_modle" \(did you mean 'load_model'\?\); the worker's ops are /,
    );
    expect(wrong(() => checkArgs("train_step", { batch: { x: Tensor.from([1]) }, kdWeight: "1" })).message).toMatch(
      /kdWeight: received "1"; expected a number/,
    );
  });
});

describe("op catalogue against the worker", () => {
  const suite = useRealWorker({ models: { bert: {} } });

  it("names exactly the ops the worker serves", async () => {
    // the worker lists its ops when asked for one it lacks
    const err = await suite.worker.callUnchecked("no_such_op").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    const listed = /known ops: (.*)$/.exec((err as WorkerError).pythonMessage)![1]!.split(", ");
    expect([...OP_NAMES]).toEqual(listed);
  });

  it("types and checks a call: load_model resolves with the model's description", async () => {
    const description = await suite.worker.call("load_model", { path: suite.models.bert, task: "sequence-classification" });
    expectTypeOf(description).toEqualTypeOf<ModelDescription>();
    expect(description.initReport?.source).toBe("checkpoint");
    expect(description.numParameters).toBeGreaterThan(0);
    await suite.worker.call("dispose", { model: description.handle });
  });

  it("a worker that receives invalid args anyway (another client) refuses them naming the op and the field", async () => {
    const err = await suite.worker.callUnchecked("seed", { seed: "abc" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).pythonType).toBe("InvalidArgsError");
    expect((err as WorkerError).pythonMessage).toMatch(/^seed: args.seed must be integer, got 'abc'/);
    const unknown = await suite.worker.callUnchecked("describe", { model: "m1", maxLevle: 2 }).catch((e: unknown) => e);
    expect((unknown as WorkerError).pythonMessage).toMatch(/describe: args must not contain \{'maxLevle'\} properties/);
  });

  it("a result that does not fit the op's schema rejects with ProtocolError naming the op and the field", async () => {
    const worker = suite.worker;
    await worker.runPython("test/helpers/replace_op.py:answer_with", { op: "describe", value: { table: 42 } });
    try {
      const err = await worker.call("describe", { model: "m0" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).direction).toBe("reply");
      expect((err as Error).message).toMatch(
        /^describe: the worker's result does not match the op catalogue .*table: received 42; expected a string/,
      );
    } finally {
      await worker.runPython("test/helpers/replace_op.py:restore", { op: "describe" });
    }
    await expect(worker.call("ping")).resolves.toBeUndefined();
  });

  it("refuses an invalid arg before anything is sent: a closed worker still answers with the args' problem", async () => {
    const worker: Worker = suite.worker;
    await worker.close();
    const err = await worker.call("seed", { seed: -1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toBe("seed: Invalid args: seed: received -1; expected an integer >= 0; nothing was sent");
    await expect(worker.call("seed", { seed: 1 })).rejects.toThrow(/closed/);
  });
});

// Type-level: checked by `tsc` (npm run typecheck), never run.
function typeChecks(worker: Worker): void {
  expectTypeOf(worker.call("load_model", { path: "x" })).resolves.toEqualTypeOf<ModelDescription>();
  expectTypeOf<OpResult<"num_parameters">>().toEqualTypeOf<number>();
  expectTypeOf(worker.call("tokenize", { tokenizer: "t1", texts: ["a"] })).resolves.toEqualTypeOf<Record<string, Tensor>>();
  // @ts-expect-error an op that is not in the catalogue
  void worker.call("no_such_op");
  // @ts-expect-error a wrong type for an arg
  void worker.call("seed", { seed: "1" });
  // @ts-expect-error a missing arg
  void worker.call("save_model", { model: "m1" });
}
void typeChecks;
