import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { seededRng } from "../src/data/index.js";
import { BasicDistiller, CacheMismatchError, CacheWriteError, DistillCache, MultiTeacherDistiller, Tensor } from "../src/index.js";
import { compareWeights, makeTinyBert, runPython, useRealWorker } from "./helpers/fixtures.js";
import { canMountSmallDisk, mountSmallDisk } from "./helpers/small-disk.js";

const N = 24; // examples
const examples = Array.from({ length: N }, (_, i) => ({
  ids: Array.from({ length: 8 }, (_, j) => BigInt(1 + ((i * 37 + j * 11) % 99))),
  label: BigInt(i % 3),
}));
/** Epoch-dependent order and batching: examples move between batches and positions every epoch. */
function epochBatches(epoch: number, batchSize = 4): Array<Record<string, Tensor>> {
  const order = examples.map((_, i) => i);
  if (epoch > 0) seededRng(1000 + epoch).shuffle(order);
  const out: Array<Record<string, Tensor>> = [];
  for (let k = 0; k < order.length; k += batchSize) {
    const rows = order.slice(k, k + batchSize).map((i) => examples[i]!);
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
function lines(dir: string): Array<{ total: number; terms: Record<string, number>; counters?: Record<string, number> }> {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}
const logits = (_b: any, o: any) => ({ logits: o.logits, losses: o.loss });

describe("teacher-output cache (real worker)", () => {
  const suite = useRealWorker({ models: { teacher: { layers: 4, seed: 1, dropout: 0 }, student: { layers: 2, seed: 2, dropout: 0 } } });
  const { tmp, models } = suite;

  async function distil(
    name: string,
    teacherCache: unknown,
    numEpochs = 2,
    data = epochBatches,
    trainConfig: Record<string, unknown> = {},
  ) {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    const outputDir = join(tmp.path, name);
    try {
      await new BasicDistiller({
        trainConfig: { outputDir, device: "cpu", seed: 5, ...trainConfig },
        distillConfig: { temperature: 2, hardLabelWeight: 0.3 },
        teacher,
        student,
        adaptorT: logits,
        adaptorS: logits,
      }).train({ optimizer: { lr: 1e-3 }, data, numEpochs, teacherCache: teacherCache as never });
      return outputDir;
    } finally {
      await Promise.all([teacher.dispose(), student.dispose()]);
    }
  }

  it("serves every example its own logits across shuffled, re-batched epochs (write-through, memory)", async () => {
    const live = await distil("live", false);
    const cached = await distil("cached", {});
    const a = lines(live);
    const b = lines(cached);
    expect(b.map((l) => l.terms.unweighted_kd_loss)).toEqual(a.map((l) => l.terms.unweighted_kd_loss));
    expect(b.map((l) => l.total)).toEqual(a.map((l) => l.total));
    const end = b[b.length - 1]!.counters!;
    expect(end.teacherForwards).toBe(6); // epoch 1 only
    expect(end.teacherForwardsSkipped).toBe(6); // every batch of epoch 2
    expect(end.cacheHits).toBe(N);
    const weights = await compareWeights(
      join(live, "gs12", "model", "model.safetensors"),
      join(cached, "gs12", "model", "model.safetensors"),
    );
    expect(weights.maxDiff).toBe(0);
  });

  it("an epoch that starts with the examples still in flight waits for their write instead of running the teacher", async () => {
    // epoch 2 runs epoch 1's batches in reverse: its first batch is epoch 1's last, whose reply has not come yet
    // when the loop (2 steps in flight, no checkpoint to drain at the epoch's end) prepares it
    const reversed = (epoch: number) => (epoch === 0 ? epochBatches(0) : epochBatches(0).reverse());
    const noEpochCheckpoint = { ckptEpochFrequency: 100 };
    const live = await distil("reversed-live", false, 2, reversed, noEpochCheckpoint);
    const cached = await distil("reversed-cached", {}, 2, reversed, noEpochCheckpoint);
    const c = lines(cached).at(-1)!.counters!;
    expect(c.teacherForwards).toBe(6);
    expect(c.teacherForwardsSkipped).toBe(6);
    expect(lines(cached).map((l) => l.total)).toEqual(lines(live).map((l) => l.total));
  });

  it("a failed step releases the batches waiting for its write: train() rejects with the worker's error", async () => {
    const broken = (epoch: number) => {
      const batches = epochBatches(0);
      const last = batches[batches.length - 1]!;
      const [rows, length] = last.input_ids!.shape as [number, number];
      batches[batches.length - 1] = {
        ...last,
        input_ids: Tensor.from(
          Array.from({ length: rows }, () => Array.from({ length }, () => 99999n)),
          "int64",
        ),
      };
      return epoch === 0 ? batches : batches.reverse();
    };
    const err = await distil("broken-cached", {}, 2, broken, { ckptEpochFrequency: 100 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/index out of range/i);
  });

  it("a second run on a filled cache folder does no teacher forward and reaches the live run's weights", async () => {
    const dir = join(tmp.path, "disk-cache");
    await distil("disk-first", { dir }, 1);
    expect(existsSync(join(dir, "records.bin"))).toBe(true);
    const second = await distil("disk-second", { dir }, 1, (e) => epochBatches(e + 1));
    const live = await distil("disk-live", false, 1, (e) => epochBatches(e + 1));
    const c = lines(second).at(-1)!.counters!;
    expect(c.teacherForwards).toBe(0);
    expect(c.cacheMisses).toBe(0);
    const diff = await compareWeights(join(live, "gs6", "model", "model.safetensors"), join(second, "gs6", "model", "model.safetensors"));
    expect(diff.maxDiff).toBe(0);
  });

  it("refuses a cache filled for another teacher or adaptor, and rebuilds it when asked", async () => {
    const dir = join(tmp.path, "fp-cache");
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const first = await DistillCache.open({ teachers: teacher, adaptorT: logits, dir });
    await first.fill({ data: epochBatches(0) });
    await first.close();
    const altered = join(tmp.path, "teacher-altered");
    await runPython(
      "import sys, shutil, torch\nfrom safetensors.torch import load_file, save_file\nshutil.copytree(sys.argv[1], sys.argv[2])\n" +
        "sd = load_file(sys.argv[2] + '/model.safetensors'); sd['classifier.bias'][0] += 0.5; save_file(sd, sys.argv[2] + '/model.safetensors', metadata={'format': 'pt'})",
      [models.teacher, altered],
    );
    const changed = await suite.worker.loadModel({ path: altered, task: "sequence-classification" });
    const err = await DistillCache.open({ teachers: changed, adaptorT: logits, dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheMismatchError);
    expect((err as Error).message).toMatch(/teacher weights changed/);
    const err2 = await DistillCache.open({ teachers: teacher, adaptorT: (_b: any, o: any) => ({ logits: o[0] }), dir }).catch(
      (e: unknown) => e,
    );
    expect((err2 as Error).message).toMatch(/adaptor changed/);
    const rebuilt = await DistillCache.open({ teachers: changed, adaptorT: logits, dir, rebuild: true });
    expect(await rebuilt.store.getBatch(rebuilt.store.keys(epochBatches(0)[0]!))).toBeNull();
    await rebuilt.close();
    await Promise.all([teacher.dispose(), changed.dispose()]);
  });

  it("records.bin copied in from another teacher's cache folder: refused naming the folder; rebuilt, 0 wrong logits served", async () => {
    const otherDir = await makeTinyBert(join(tmp.path, "teacher-b"), { layers: 2, seed: 9, dropout: 0 });
    const teacherA = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const teacherB = await suite.worker.loadModel({ path: otherDir, task: "sequence-classification" });
    const dirA = join(tmp.path, "copy-a");
    const dirB = join(tmp.path, "copy-b");
    for (const [teachers, dir] of [
      [teacherA, dirA],
      [teacherB, dirB],
    ] as const) {
      const cache = await DistillCache.open({ teachers, adaptorT: logits, dir });
      await cache.fill({ data: epochBatches(0) });
      await cache.close();
    }
    for (const f of ["records.bin", "index.bin"]) copyFileSync(join(dirA, f), join(dirB, f));
    const err = await DistillCache.open({ teachers: teacherB, adaptorT: logits, dir: dirB }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheMismatchError);
    expect((err as Error).message).toContain(
      `Teacher cache ${dirB} was filled for other settings: records.bin holds the records of another cache`,
    );
    const rebuilt = await DistillCache.open({ teachers: teacherB, adaptorT: logits, dir: dirB, rebuild: true });
    const all = epochBatches(0, N)[0]!;
    const keys = rebuilt.store.keys(all);
    expect((await rebuilt.store.getMany(keys)).filter((r) => r !== null)).toHaveLength(0); // the copied records are gone
    await rebuilt.fill({ data: epochBatches(0) }); // recomputed by teacher B
    const served = (await rebuilt.store.getBatch(keys))![0]!.toFlatArray();
    const exact = (await teacherB.predict(all)).logits!.toFlatArray();
    expect(served).toHaveLength(N * 3);
    expect(served.filter((v, i) => Math.abs(v - exact[i]!) > 1e-5)).toHaveLength(0);
    await rebuilt.close();
    await Promise.all([teacherA.dispose(), teacherB.dispose()]);
  });

  // probed at collection, before the suite's folder exists: any parent tells whether a tmpfs can be mounted
  it.skipIf(!canMountSmallDisk(tmpdir()))(
    "a full disk while training: CacheWriteError naming the folder, or one warning and the live run's losses",
    async () => {
      // a 3-page tmpfs: manifest.json, records.bin and index.bin take a page each, records.bin filled to 43 bytes short
      // of its page, so the first record written while training needs a page that is not there
      const disk = mountSmallDisk(tmp.path, "full-disk", 3 * 4096)!;
      const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
      try {
        const dir = join(disk.path, "cache");
        const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
        const cache = await DistillCache.open({ teachers: teacher, adaptorT: logits, dir, temperature: 2 });
        await cache.store.putBatch(["pad"], [Tensor.zeros([1, 987], "float32")]);
        await cache.close();
        await teacher.dispose();
        expect(statSync(join(dir, "records.bin")).size).toBe(4096 - 43);
        expect(() => writeFileSync(join(disk.path, "probe"), "x")).toThrow(/ENOSPC/);

        const err = await distil("full-raise", { dir }, 1).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CacheWriteError);
        expect((err as Error).message).toContain(`Teacher cache ${dir}: cannot write records.bin: no space left on device (ENOSPC)`);
        expect(readdirSync(dir).sort()).toEqual(["index.bin", "manifest.json", "records.bin"]);

        const cached = await distil("full-continue", { dir, onWriteError: "continue" }, 1);
        const cacheWarnings = warn.mock.calls.filter(([m]) => String(m).includes("teacher cache"));
        expect(cacheWarnings).toHaveLength(1);
        expect(String(cacheWarnings[0]![0])).toContain(`teacher cache ${dir}: cannot write records.bin: no space left on device`);
        expect(readdirSync(dir).sort()).toEqual(["index.bin", "manifest.json", "records.bin"]);
        const live = await distil("full-live", false, 1);
        expect(lines(cached).map((l) => l.total)).toEqual(lines(live).map((l) => l.total));
        expect(lines(cached).at(-1)!.counters!.teacherForwards).toBe(6);
      } finally {
        warn.mockRestore();
        disk.release();
      }
    },
  );

  it("precompute pass, then training with zero teacher forwards; float16 storage within rounding", async () => {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const cache = await DistillCache.open({ teachers: teacher, adaptorT: logits, dtype: "float16" });
    const filled = await cache.fill({ data: epochBatches(0), batchSize: 12 });
    expect(filled.teacherForwards).toBe(2); // 6 batches of 4 merged into 2 forwards of 12
    const b0 = epochBatches(0)[0]!;
    const stored = (await cache.store.getBatch(cache.store.keys(b0)))![0]!;
    expect(stored.dtype).toBe("float16");
    const exact = (await teacher.predict(b0)).logits!.toFlatArray();
    stored.toFlatArray().forEach((v, i) => {
      expect(Math.abs(v - exact[i]!)).toBeLessThanOrEqual(Math.abs(exact[i]!) * 2 ** -11 + 2 ** -25);
    });
    const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    const outputDir = join(tmp.path, "prefilled");
    await new BasicDistiller({ trainConfig: { outputDir, device: "cpu" }, teacher, student, adaptorT: logits, adaptorS: logits }).train({
      optimizer: { lr: 1e-3 },
      data: epochBatches,
      numEpochs: 2,
      teacherCache: cache,
    });
    expect(lines(outputDir).at(-1)!.counters!.teacherForwards).toBe(2); // only the fill's
    await cache.close();
    await Promise.all([teacher.dispose(), student.dispose()]);
  });

  it("top-k storage: exact values and indices, and the sparse KD term equals a reference computation", async () => {
    const teacher = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    const cache = await DistillCache.open({ teachers: teacher, adaptorT: logits, topK: 2, temperature: 2 });
    await cache.fill({ data: epochBatches(0) });
    const b0 = epochBatches(0)[0]!;
    const [values, indices] = (await cache.store.getBatch(cache.store.keys(b0)))!;
    const t = (await teacher.predict(b0)).logits!.toArray() as number[][];
    const s = (await student.predict(b0)).logits!.toArray() as number[][];
    const logSoftmax = (row: number[], T: number) => {
      const m = Math.max(...row.map((v) => v / T));
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v / T - m), 0));
      return row.map((v) => v / T - lse);
    };
    let ref = 0;
    t.forEach((row, i) => {
      const lp = logSoftmax(row, 2);
      const order = lp
        .map((v, j) => [v, j] as const)
        .sort((x, y) => y[0] - x[0])
        .slice(0, 2);
      expect((indices!.toArray() as number[][])[i]).toEqual(order.map(([, j]) => j));
      (values!.toArray() as number[][])[i]!.forEach((v, k) => {
        expect(v).toBeCloseTo(order[k]![0], 6);
      });
      const p = order.map(([v]) => Math.exp(v));
      const z = p[0]! + p[1]!;
      const ls = logSoftmax(s[i]!, 2);
      ref += -order.reduce((a, [, j], k) => a + (p[k]! / z) * ls[j]!, 0);
    });
    ref /= t.length;
    const outputDir = join(tmp.path, "topk");
    await new BasicDistiller({
      trainConfig: { outputDir, device: "cpu" },
      distillConfig: { temperature: 2 },
      teacher,
      student,
      adaptorT: logits,
      adaptorS: logits,
    }).train({ optimizer: { lr: 1e-3 }, data: [b0], numEpochs: 1, teacherCache: cache, preflight: false });
    expect(lines(outputDir)[0]!.terms.unweighted_kd_loss).toBeCloseTo(ref, 5);
    await cache.close();
    await Promise.all([teacher.dispose(), student.dispose()]);
  });

  it("recovers from a data file cut in the middle of a record: the cut entries are recomputed", async () => {
    const dir = join(tmp.path, "torn-cache");
    await distil("torn-first", { dir }, 1);
    const data = join(dir, "records.bin");
    truncateSync(data, statSync(data).size - 7);
    const out = await distil("torn-second", { dir }, 1);
    const c = lines(out).at(-1)!.counters!;
    expect(c.teacherForwards).toBeGreaterThanOrEqual(1); // the batch holding the torn record ran its teacher again
    expect(c.teacherForwards).toBeLessThan(6);
    const live = await distil("torn-live", false, 1);
    expect(lines(out).map((l) => l.total)).toEqual(lines(live).map((l) => l.total));
  });

  it("MultiTeacherDistiller caches the teachers' mean", async () => {
    const other = await makeTinyBert(join(tmp.path, "teacher2"), { layers: 2, seed: 8, dropout: 0 });
    const t1 = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const t2 = await suite.worker.loadModel({ path: other, task: "sequence-classification" });
    const run = async (name: string, teacherCache: unknown) => {
      const s = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
      await new MultiTeacherDistiller({
        trainConfig: { outputDir: join(tmp.path, name), device: "cpu" },
        teachers: [t1, t2],
        student: s,
        adaptorT: logits,
        adaptorS: logits,
      }).train({ optimizer: { lr: 1e-3 }, data: epochBatches, numEpochs: 2, teacherCache: teacherCache as never });
      await s.dispose();
      return lines(join(tmp.path, name));
    };
    const live = await run("mt-live", false);
    const cached = await run("mt-cached", {});
    expect(cached.map((l) => l.total)).toEqual(live.map((l) => l.total));
    expect(cached.at(-1)!.counters!.teacherForwardsSkipped).toBe(6);
    await Promise.all([t1.dispose(), t2.dispose()]);
  });
});
