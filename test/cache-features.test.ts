import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { seededRng } from "../src/data/index.js";
import { CacheMismatchError, DistillCache, GeneralDistiller, type IntermediateMatchInput, type ModelHandle, Tensor } from "../src/index.js";
import { compareWeights, useRealWorker } from "./helpers/fixtures.js";

const N = 24; // examples
const examples = Array.from({ length: N }, (_, i) => ({
  ids: Array.from({ length: 8 }, (_, j) => BigInt(1 + ((i * 37 + j * 11) % 99))),
  label: BigInt(i % 3),
}));
/** Epoch-dependent order: examples move between batches and positions every epoch. */
function epochBatches(epoch: number): Array<Record<string, Tensor>> {
  const order = examples.map((_, i) => i);
  if (epoch > 0) seededRng(1000 + epoch).shuffle(order);
  const out: Array<Record<string, Tensor>> = [];
  for (let k = 0; k < order.length; k += 4) {
    const rows = order.slice(k, k + 4).map((i) => examples[i]!);
    out.push({
      input_ids: Tensor.from(
        rows.map((r) => r.ids),
        "int64",
      ),
      attention_mask: Tensor.from(
        rows.map((r) => r.ids.map(() => 1n)),
        "int64",
      ),
      labels: Tensor.from(
        rows.map((r) => r.label),
        "int64",
      ),
    });
  }
  return out;
}
type Line = { total: number; terms: Record<string, number>; counters?: Record<string, number> };
function lines(dir: string): Line[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}
const adaptor = (b: any, o: any) => ({
  logits: o.logits,
  hidden: o.hidden_states,
  attention: o.attentions,
  inputs_mask: b.attention_mask,
  losses: o.loss,
});
/** Teacher 32 wide, student 16 wide: the hidden matches need projections. */
const projected: IntermediateMatchInput[] = [
  { layerS: 0, layerT: 0, feature: "hidden", loss: "hidden_mse", weight: 1, proj: ["linear", 16, 32] },
  { layerS: 2, layerT: -1, feature: "hidden", loss: "hidden_mse", weight: 1, proj: ["linear", 16, 32] },
  { layerS: 1, layerT: 3, feature: "attention", loss: "attention_mse", weight: 1 },
];
/** The same width on both sides: no projection, so the fidelity report's match losses are the run's own. */
const plain: IntermediateMatchInput[] = [
  { layerS: 1, layerT: 2, feature: "hidden", loss: "hidden_mse", weight: 1 },
  { layerS: 2, layerT: -1, feature: "hidden", loss: "cos", weight: 1 },
  { layerS: 1, layerT: 3, feature: "attention", loss: "attention_mse", weight: 1 },
];

describe("teacher features in the teacher-output cache (real worker)", () => {
  const suite = useRealWorker({
    models: {
      teacher: { layers: 4, seed: 1, dropout: 0 },
      student: { layers: 2, hidden: 16, seed: 2, dropout: 0 },
      wide: { layers: 2, seed: 3, dropout: 0 },
    },
  });
  const { tmp, models } = suite;

  async function distil(
    name: string,
    options: {
      student?: "student" | "wide";
      matches?: IntermediateMatchInput[];
      teacherCache: unknown;
      lr?: number;
      data?: typeof epochBatches;
      teacher?: ModelHandle;
    },
  ): Promise<string> {
    const teacher = options.teacher ?? (await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" }));
    const student = await suite.worker.loadModel({ path: models[options.student ?? "student"], task: "sequence-classification" });
    const outputDir = join(tmp.path, name);
    try {
      await new GeneralDistiller({
        trainConfig: { outputDir, device: "cpu", seed: 5 },
        distillConfig: { temperature: 2, hardLabelWeight: 0.3, intermediateMatches: options.matches ?? projected },
        teacher,
        student,
        adaptorT: adaptor,
        adaptorS: adaptor,
      }).train({
        optimizer: { lr: options.lr ?? 1e-3 },
        data: options.data ?? epochBatches,
        numEpochs: 2,
        teacherCache: options.teacherCache as never,
      });
      return outputDir;
    } finally {
      await Promise.all([options.teacher ? null : teacher.dispose(), student.dispose()]);
    }
  }

  it("float32 features: a GeneralDistiller run with hidden matches and projections equals the live run bit for bit; epoch 2 runs no teacher forward", async () => {
    const live = await distil("f32-live", { teacherCache: false });
    const cached = await distil("f32-cached", { teacherCache: { featureDtype: "float32" } });
    const a = lines(live);
    const b = lines(cached);
    expect(b.map((l) => l.terms)).toEqual(a.map((l) => l.terms));
    expect(b.map((l) => l.total)).toEqual(a.map((l) => l.total));
    const end = b.at(-1)!.counters!;
    expect(end.teacherForwards).toBe(6); // epoch 1 only (write-through)
    expect(end.teacherForwardsSkipped).toBe(6); // every batch of epoch 2
    expect(end.cacheHits).toBe(N);
    for (const file of ["model/model.safetensors", "projections.safetensors"]) {
      const diff = await compareWeights(join(live, "gs12", file), join(cached, "gs12", file));
      expect(diff.common).toBeGreaterThan(0);
      expect(diff.maxDiff).toBe(0);
    }
  });

  it("float16 features give each match's loss within the bound the fidelity report gives", async () => {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: models.wide, task: "sequence-classification" });
    const cache = await DistillCache.open({ teachers: teacher, adaptorT: adaptor, intermediateMatches: plain, featureDtype: "float16" });
    const report = await cache.fidelity({ data: epochBatches(0), student, adaptorS: adaptor, batches: 6 });
    await cache.close();
    await Promise.all([teacher.dispose(), student.dispose()]);
    expect(report.examples).toBe(N);
    expect(report.table).toMatch(/bytes per example: float32 \d+, float16 \d+, int8 \d+/);
    const bytes = Object.fromEntries(report.bytesPerExample.map((e) => [e.dtype, e.bytes]));
    // per example: hidden 8×32 twice, attention 4×8×8; int8 adds a float32 scale per row
    expect(bytes).toEqual({ float32: 4 * 768, float16: 2 * 768, int8: 768 + 4 * (8 + 8 + 32) });
    // lr 1e-30 (no weight moves in float32) and the same batches both epochs: epoch 1 (live teacher, filling the cache) and epoch 2 (cached float16)
    // compute each match on the same student for the same batch
    const sameBatches = () => epochBatches(0);
    const run = lines(
      await distil("f16", { student: "wide", matches: plain, teacherCache: { featureDtype: "float16" }, lr: 1e-30, data: sameBatches }),
    );
    expect(run.at(-1)!.counters!.teacherForwards).toBe(6);
    for (const m of report.matches) {
      const f16 = m.stored.find((e) => e.dtype === "float16")!;
      const f32 = m.stored.find((e) => e.dtype === "float32")!;
      expect(f32.absDiff).toBe(0);
      expect(f16.relDiff).toBeLessThan(1e-2);
      const live = run.slice(0, 6).map((l) => l.terms[m.name]!);
      const cached = run.slice(6).map((l) => l.terms[m.name]!);
      // the report's live loss is the run's (same student, same batches)
      const mean = live.reduce((s, x) => s + x, 0) / live.length;
      expect(Math.abs(m.live - mean)).toBeLessThanOrEqual(1e-5 * Math.abs(mean));
      live.forEach((x, k) => {
        expect(Math.abs(cached[k]! - x)).toBeLessThanOrEqual(f16.absDiff * 1.001 + 1e-7 * Math.abs(x));
      });
      expect(cached).not.toEqual(live); // float16 does round the features
    }
  });

  it("int8 with per-row scales round-trips within half a step of each row (float64 reference); fill() then a run without teacher forwards", async () => {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const exact = await DistillCache.open({ teachers: teacher, adaptorT: adaptor, intermediateMatches: projected });
    const int8 = await DistillCache.open({ teachers: teacher, adaptorT: adaptor, intermediateMatches: projected, featureDtype: "int8" });
    await exact.fill({ data: epochBatches(0) });
    expect((await int8.fill({ data: epochBatches(0), batchSize: 12 })).teacherForwards).toBe(2);
    const keys = exact.store.keys(epochBatches(0)[0]!);
    const reference = (await exact.store.getMany(keys)) as Tensor[][];
    const stored = (await int8.store.getMany(keys)) as Tensor[][];
    let rows = 0;
    for (let e = 0; e < keys.length; e++) {
      // features sorted: attention[3], hidden[-1], hidden[0]; then the logits
      expect(reference[e]!.map((t) => t.dtype)).toEqual(["float32", "float32", "float32", "float32"]);
      expect(stored[e]!.map((t) => t.dtype)).toEqual(["int8", "float32", "int8", "float32", "int8", "float32", "float32"]);
      expect(stored[e]![6]!.toFlatArray()).toEqual(reference[e]![3]!.toFlatArray()); // logits as they were
      for (let f = 0; f < 3; f++) {
        const x = reference[e]![f]!;
        const q = stored[e]![2 * f]!.toFlatArray();
        const scales = stored[e]![2 * f + 1]!.toFlatArray();
        const width = x.shape.at(-1)!;
        const values = x.toFlatArray();
        expect(scales.length * width).toBe(values.length);
        scales.forEach((scale, r) => {
          const row = values.slice(r * width, (r + 1) * width);
          const ref = Math.max(...row.map(Math.abs)) / 127; // float64
          expect(Math.abs(scale - ref)).toBeLessThanOrEqual(ref * 2 ** -23);
          row.forEach((v, j) => {
            const code = q[r * width + j]!;
            expect(Math.abs(code)).toBeLessThanOrEqual(127);
            expect(Math.abs(code * scale - v)).toBeLessThanOrEqual(scale / 2 + Math.abs(v) * 2 ** -22);
            const ideal = v / scale;
            if (Math.abs(Math.abs(ideal - Math.trunc(ideal)) - 0.5) > 1e-3) expect(code).toBe(Math.round(ideal) + 0); // + 0: -0 → 0
          });
          rows++;
        });
      }
    }
    expect(rows).toBe(4 * (8 + 8 + 4 * 8));
    await exact.close();
    const outputDir = await distil("int8-prefilled", { teacherCache: int8, teacher });
    const end = lines(outputDir).at(-1)!.counters!;
    expect(end.teacherForwards).toBe(2); // only the fill's
    expect(end.cacheMisses).toBe(0);
    await int8.close();
    await teacher.dispose();
  });

  it("a cache filled for other matches is refused naming the difference; rebuild: true fills it again", async () => {
    const dir = join(tmp.path, "features-fp");
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const first = await DistillCache.open({ teachers: teacher, adaptorT: adaptor, dir, intermediateMatches: projected });
    await first.fill({ data: epochBatches(0) });
    await first.close();
    const open = (o: Record<string, unknown>) =>
      DistillCache.open({ teachers: teacher, adaptorT: adaptor, dir, ...o } as never).catch((e: unknown) => e) as Promise<Error>;
    const other = await open({ intermediateMatches: plain });
    expect(other).toBeInstanceOf(CacheMismatchError);
    expect(other.message).toMatch(
      /teacher features attention\[3\], hidden\[-1\], hidden\[0\] → attention\[3\], hidden\[-1\], hidden\[2\].*rebuild: true/,
    );
    expect((await open({ intermediateMatches: projected, featureDtype: "int8" })).message).toMatch(/featureDtype float32 → int8/);
    expect((await open({})).message).toMatch(/teacher features attention\[3\], hidden\[-1\], hidden\[0\] → none \(logits only\)/);
    const rebuilt = (await open({ intermediateMatches: plain, rebuild: true })) as unknown as DistillCache;
    expect(await rebuilt.store.getBatch(rebuilt.store.keys(epochBatches(0)[0]!))).toBeNull();
    // an open cache handed to a run whose matches read other features
    const err = (await distil("other-matches", { teacherCache: rebuilt, teacher }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/other intermediate matches: the matches read hidden\[0\], which it does not hold; it holds hidden\[2\]/);
    await rebuilt.close();
    await teacher.dispose();
  });

  it("bad storage forms and top-k with features are refused naming the option", async () => {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const open = (o: Record<string, unknown>) =>
      DistillCache.open({ teachers: teacher, adaptorT: adaptor, intermediateMatches: projected, ...o } as never).catch(
        (e: unknown) => e,
      ) as Promise<Error>;
    expect((await open({ featureDtype: "fp16" })).message).toMatch(
      /teacherCache.featureDtype: "fp16" is not a storage form of features; allowed: "float32", "float16", "int8"/,
    );
    expect((await open({ topK: 4 })).message).toMatch(/teacherCache.topK: 4 with intermediate matches is not supported.*topK: null/);
    const noHidden = await DistillCache.open({
      teachers: teacher,
      adaptorT: (_b: any, o: any) => ({ logits: o.logits }),
      intermediateMatches: projected,
    });
    const fill = (await noHidden.fill({ data: epochBatches(0) }).catch((e: unknown) => e)) as Error;
    expect(fill.message).toMatch(/teacherCache features: the teacher adaptor returns no 'attention' for the matches to read/);
    const logitsOnly = await DistillCache.open({ teachers: teacher, adaptorT: adaptor });
    const report = (await logitsOnly
      .fidelity({ data: epochBatches(0), student: teacher, adaptorS: adaptor })
      .catch((e: unknown) => e)) as Error;
    expect(report.message).toMatch(/this cache holds logits only; open it with intermediateMatches/);
    await Promise.all([noHidden.close(), logitsOnly.close()]);
    await teacher.dispose();
  });
});
