/**
 * The teacher cache and the other distillers on a worker group (torchrun, gloo on the CPU): 2 ranks × shard 8 end
 * with the weights of 1 worker × batch 16, and a cached epoch runs no teacher forward on any rank.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerGroup } from "../src/distributed/index.js";
import {
  BasicDistiller,
  EMDDistiller,
  GeneralDistiller,
  MultiTaskDistiller,
  MultiTeacherDistiller,
  Tensor,
  TheseusDistiller,
  type Worker,
} from "../src/index.js";
import { type TeacherConnection, TeacherService } from "../src/service/index.js";
import { compareWeights, useRealWorker } from "./helpers/fixtures.js";

function batch(seed: number, n = 16, len = 6): Record<string, Tensor> {
  const ids = Array.from({ length: n }, (_, i) => Array.from({ length: len }, (_, j) => BigInt(1 + ((seed * 17 + i * 7 + j * 13) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1n)),
      "int64",
    ),
    labels: Tensor.from(
      Array.from({ length: n }, (_, i) => BigInt((seed + i) % 3)),
      "int64",
    ),
  };
}

const logits = (_b: any, o: any) => ({ logits: o.logits });
const full = (b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });
const SLOW = Boolean(process.env.TEXTBREWER_SLOW_TESTS);
const COUNTER = "test/helpers/teacher_forwards.py";

describe("the teacher cache and every distiller on 2 ranks (gloo, CPU)", () => {
  const suite = useRealWorker({
    models: {
      teacher: { layers: 3, hidden: 48, seed: 1, dropout: 0 },
      teacherB: { layers: 2, hidden: 32, seed: 9, dropout: 0 },
      student: { layers: 2, hidden: 32, seed: 2, dropout: 0 },
    },
  });
  let group: WorkerGroup | undefined;
  beforeAll(async () => {
    group = await WorkerGroup.start({ device: "cpu", distributed: { nprocPerNode: 2 } });
  });
  afterAll(async () => {
    await group?.close();
  });

  const data = [batch(1), batch(2), batch(3), batch(4)];
  const load = (worker: Worker | WorkerGroup, path: string) => worker.loadModel({ path, task: "sequence-classification" });
  const trainConfig = (outputDir: string) => ({ outputDir, device: "cpu", seed: 5 });
  async function sameWeights(a: string, b: string, projections = false): Promise<void> {
    const file = (dir: string) => join(dir, "model", "model.safetensors");
    const diff = await compareWeights(file(a), file(b));
    expect(diff.common).toBeGreaterThan(30);
    expect(diff.onlyA.length + diff.onlyB.length).toBe(0);
    expect(diff.maxDiff).toBeLessThan(1e-6);
    // the runs trained: equal weights are not the untouched student's
    expect((await compareWeights(join(suite.models.student, "model.safetensors"), file(b))).maxDiff).toBeGreaterThan(1e-4);
    if (projections) {
      const proj = await compareWeights(join(a, "projections.safetensors"), join(b, "projections.safetensors"));
      expect(proj.common).toBeGreaterThan(0);
      expect(proj.maxDiff).toBeLessThan(1e-6);
    }
  }

  it("the cache: written through from every rank's shard, the second epoch runs no teacher on any rank, the weights of a live run", async () => {
    const run = async (worker: Worker | WorkerGroup, name: string, teacherCache: unknown): Promise<{ dir: string; forwards: number[] }> => {
      const teacher = await load(worker, suite.models.teacher);
      const student = await load(worker, suite.models.student);
      const outputDir = join(suite.tmp.path, name);
      const each = worker instanceof WorkerGroup ? worker : null;
      const call = (fn: string) =>
        each ? each.callEach("call_python", { ref: `${COUNTER}:${fn}`, args: {} }) : worker.runPython(`${COUNTER}:${fn}`).then((r) => [r]);
      await call("start");
      await new BasicDistiller({
        trainConfig: trainConfig(outputDir),
        distillConfig: { temperature: 2, hardLabelWeight: 0.5 },
        teacher,
        student,
        adaptorT: full,
        adaptorS: full,
      }).train({ optimizer: { lr: 2e-3 }, data, numEpochs: 2, progress: false, teacherCache: teacherCache as never });
      const forwards = (await call("count")) as number[];
      await Promise.all([teacher.dispose(), student.dispose()]);
      return { dir: join(outputDir, "gs8"), forwards };
    };
    const cached = await run(group!, "cache-ranks", { dir: join(suite.tmp.path, "cache-store") });
    // 4 batches: the first epoch runs the teacher on each rank's shard, the second reads the cache on every rank
    expect(cached.forwards).toEqual([4, 4]);
    const live = await run(group!, "live-ranks", false);
    expect(live.forwards).toEqual([8, 8]);
    const single = await run(suite.worker, "live-single", false);
    await sameWeights(cached.dir, live.dir);
    await sameWeights(cached.dir, single.dir);
  });

  it("cached teacher features: GeneralDistiller with a projected hidden match reads them on every rank and ends with a live run's weights", async () => {
    const matches = [
      {
        layerT: 3,
        layerS: 2,
        feature: "hidden" as const,
        loss: "hidden_mse",
        weight: 2,
        proj: ["linear", 32, 48] as ["linear", number, number],
      },
    ];
    const run = async (worker: Worker | WorkerGroup, name: string, teacherCache: unknown): Promise<{ dir: string; forwards: number[] }> => {
      const teacher = await load(worker, suite.models.teacher);
      const student = await load(worker, suite.models.student);
      const outputDir = join(suite.tmp.path, name);
      const each = worker instanceof WorkerGroup ? worker : null;
      const call = (fn: string) =>
        each ? each.callEach("call_python", { ref: `${COUNTER}:${fn}`, args: {} }) : worker.runPython(`${COUNTER}:${fn}`).then((r) => [r]);
      await call("start");
      await new GeneralDistiller({
        trainConfig: trainConfig(outputDir),
        distillConfig: { temperature: 2, hardLabelWeight: 0.5, intermediateMatches: matches },
        teacher,
        student,
        adaptorT: full,
        adaptorS: full,
      }).train({ optimizer: { lr: 2e-3 }, data, numEpochs: 2, progress: false, teacherCache: teacherCache as never });
      const forwards = (await call("count")) as number[];
      await Promise.all([teacher.dispose(), student.dispose()]);
      return { dir: join(outputDir, "gs8"), forwards };
    };
    const cached = await run(group!, "features-ranks", { dir: join(suite.tmp.path, "feature-store") });
    expect(cached.forwards).toEqual([4, 4]);
    const single = await run(suite.worker, "features-single", false);
    await sameWeights(cached.dir, single.dir, true);
  });

  it.skipIf(!SLOW)(
    "a teacher service feeds every rank: 2 ranks reading it, dense or top-k, equal 1 worker with the teacher in-process",
    async () => {
      const run = async (
        worker: Worker | WorkerGroup,
        name: string,
        teacher: "in-process" | TeacherConnection,
        teacherCache: unknown = false,
      ) => {
        const student = await load(worker, suite.models.student);
        const local = teacher === "in-process" ? await load(worker, suite.models.teacher) : null;
        const outputDir = join(suite.tmp.path, name);
        await new GeneralDistiller({
          trainConfig: trainConfig(outputDir),
          distillConfig: {
            temperature: 2,
            hardLabelWeight: 0.5,
            intermediateMatches: [{ layerT: 3, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 2, proj: ["linear", 32, 48] }],
          },
          student,
          ...(local ? { teacher: local, adaptorT: full } : { teacher: teacher as TeacherConnection }),
          adaptorS: full,
        }).train({ optimizer: { lr: 2e-3 }, data, numEpochs: 1, progress: false, teacherCache: teacherCache as never });
        await Promise.all([student.dispose(), local?.dispose()]);
        return join(outputDir, "gs4");
      };
      await using service = await TeacherService.start({
        model: { path: suite.models.teacher, task: "sequence-classification" },
        adaptorT: full,
        device: "cpu",
      });
      const single = await run(suite.worker, "service-single", "in-process");
      const ranks = await run(group!, "service-ranks", service.client());
      await sameWeights(single, ranks, true);
      // top-k at k = V (3 classes): the KD targets of the dense run, each rank's shard scored by the service
      const topK = await run(group!, "service-ranks-topk", service.client({ topK: 3 }));
      const diff = await compareWeights(join(single, "model", "model.safetensors"), join(topK, "model", "model.safetensors"));
      expect(diff.maxDiff).toBeLessThan(1e-4); // float32 rounding of the sparse formula, carried by Adam's steps
      const stats = await service.stats();
      expect(stats.clients).toBeGreaterThanOrEqual(4); // each rank connects on its own
      expect(stats.errors).toBe(0);
    },
  );

  it.skipIf(!SLOW)("TheseusDistiller: 2 ranks × shard 8 draw the same replacements and equal 1 worker × batch 16", async () => {
    const run = async (worker: Worker | WorkerGroup, name: string) => {
      const teacher = await load(worker, suite.models.teacher);
      const outputDir = join(suite.tmp.path, name);
      const theseus = await TheseusDistiller.create({
        trainConfig: trainConfig(outputDir),
        teacher,
        numLayers: 2,
        replacement: { type: "linear", base: 0.3, k: 0.2 },
      });
      await theseus.train({ optimizer: { lr: 2e-3 }, data, numEpochs: 1, progress: false });
      const state = await theseus.state();
      await Promise.all([teacher.dispose(), theseus.model.dispose()]);
      return { dir: join(outputDir, "gs4"), state };
    };
    const single = await run(suite.worker, "theseus-single");
    const ranks = await run(group!, "theseus-ranks");
    expect(ranks.state).toEqual(single.state);
    const diff = await compareWeights(join(single.dir, "model", "model.safetensors"), join(ranks.dir, "model", "model.safetensors"));
    expect(diff.common).toBeGreaterThan(30);
    // the mean of two shard means against one mean of 16 rounds differently; a different draw moves weights by ~1e-3
    expect(diff.maxDiff).toBeLessThan(1e-5);
    const losses = (dir: string) =>
      readFileSync(join(dir, "..", "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).total as number);
    const [a, b] = [losses(single.dir), losses(ranks.dir)];
    expect(b).toHaveLength(a.length);
    for (const [i, v] of a.entries()) expect(Math.abs(v - b[i]!)).toBeLessThan(1e-5);
  });

  it.skipIf(!SLOW)("MultiTeacherDistiller, MultiTaskDistiller and EMDDistiller: 2 ranks × shard 8 equal 1 worker × batch 16", async () => {
    const multiTeacher = async (worker: Worker | WorkerGroup, dir: string): Promise<string> => {
      const [a, b, s] = await Promise.all([
        load(worker, suite.models.teacher),
        load(worker, suite.models.teacherB),
        load(worker, suite.models.student),
      ]);
      await new MultiTeacherDistiller({
        trainConfig: trainConfig(dir),
        distillConfig: { temperature: 2 },
        teachers: [a, b],
        student: s,
        adaptorT: logits,
        adaptorS: logits,
      }).train({ optimizer: { lr: 2e-3 }, data, numEpochs: 1, progress: false });
      await Promise.all([a.dispose(), b.dispose(), s.dispose()]);
      return join(dir, "gs4");
    };
    const multiTask = async (worker: Worker | WorkerGroup, dir: string): Promise<string> => {
      const [a, b, s] = await Promise.all([
        load(worker, suite.models.teacher),
        load(worker, suite.models.teacherB),
        load(worker, suite.models.student),
      ]);
      await new MultiTaskDistiller({
        trainConfig: { ...trainConfig(dir), ckptSteps: 4 },
        distillConfig: { temperature: 2, hardLabelWeight: 0.5 },
        teachers: { a, b },
        student: s,
        adaptorT: { a: full, b: full },
        adaptorS: { a: full, b: full },
      }).train({ optimizer: { lr: 2e-3 }, data: { a: [batch(1), batch(2)], b: [batch(3)] }, numSteps: 4, progress: false });
      await Promise.all([a.dispose(), b.dispose(), s.dispose()]);
      return join(dir, "gs4");
    };
    const emd = async (worker: Worker | WorkerGroup, dir: string): Promise<string> => {
      const [t, s] = await Promise.all([load(worker, suite.models.teacher), load(worker, suite.models.student)]);
      await new EMDDistiller({
        trainConfig: trainConfig(dir),
        teacher: t,
        student: s,
        adaptorT: full,
        adaptorS: full,
        emd: { layerNumS: 3, layerNumT: 4, weight: 1, proj: ["linear", 32, 48] },
      }).train({ optimizer: { lr: 3e-3 }, data, numEpochs: 1, progress: false });
      await Promise.all([t.dispose(), s.dispose()]);
      return join(dir, "gs4");
    };
    for (const [name, run, projections] of [
      ["multi-teacher", multiTeacher, false],
      ["multi-task", multiTask, false],
      ["emd", emd, true],
    ] as const) {
      const single = await run(suite.worker, join(suite.tmp.path, `${name}-single`));
      const ranks = await run(group!, join(suite.tmp.path, `${name}-ranks`));
      await sameWeights(single, ranks, projections).catch((e: Error) => {
        e.message = `${name}: ${e.message}`;
        throw e;
      });
    }
  });
  it.skipIf(!SLOW)(
    "strategy fsdp: 2 sharded ranks equal 1 worker (1e-5); checkpoints hold the full weights; the student is whole after train()",
    async () => {
      const shardedAtCheckpoints: unknown[][] = [];
      const run = async (worker: Worker | WorkerGroup, name: string, resumeFrom?: string): Promise<string> => {
        const [t, s] = await Promise.all([load(worker, suite.models.teacher), load(worker, suite.models.student)]);
        const outputDir = join(suite.tmp.path, name);
        const callback = async ({ step }: { step: number }): Promise<void> => {
          // the student answers inside a callback, sharded or not: every rank joins the forward
          const logits = (await s.predict(batch(9))).logits!;
          writeFileSync(join(outputDir, `logits-gs${step}.json`), JSON.stringify(logits.toArray()));
          if (worker instanceof WorkerGroup) {
            shardedAtCheckpoints.push(
              await worker.callEach("call_python", { ref: "test/helpers/fsdp_probe.py:sharded_modules", args: {} }),
            );
            // what needs the whole weights on rank 0 alone is refused at once, naming the way out
            await expect(s.save(join(outputDir, "mid-run"))).rejects.toThrow(/save_model: the student is sharded.*checkpointDir/);
          }
        };
        try {
          await new GeneralDistiller({
            trainConfig: { ...trainConfig(outputDir), gradientAccumulationSteps: 2 },
            distillConfig: {
              temperature: 3,
              intermediateMatches: [{ layerT: 3, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 2, proj: ["linear", 32, 48] }],
            },
            teacher: t,
            student: s,
            adaptorT: full,
            adaptorS: full,
          }).train({
            optimizer: { lr: 2e-3 },
            maxGradNorm: 0.5,
            data,
            numEpochs: 2,
            progress: false,
            callback,
            ...(resumeFrom ? { resumeFrom } : {}),
          });
          // after train() the handle names a whole model again: rank 0 answers alone, with the trained weights
          const predicted = (await s.predict(batch(9))).logits!;
          writeFileSync(join(outputDir, "logits.json"), JSON.stringify(predicted.toArray()));
        } finally {
          await Promise.all([t.dispose(), s.dispose()]);
        }
        return outputDir;
      };
      const fsdp = await WorkerGroup.start({ device: "cpu", distributed: { nprocPerNode: 2, strategy: "fsdp" } });
      try {
        const sharded = await run(fsdp, "fsdp-ranks");
        const single = await run(suite.worker, "fsdp-single");
        // while it trained, each rank held the student sharded: its 2 layers and the whole model
        expect(shardedAtCheckpoints).toEqual([
          [3, 3],
          [3, 3],
        ]);
        for (const step of ["gs2", "gs4"]) {
          const file = (dir: string) => join(dir, step, "model", "model.safetensors");
          const diff = await compareWeights(file(single), file(sharded));
          expect(diff.common).toBeGreaterThan(30);
          expect(diff.onlyA.length + diff.onlyB.length).toBe(0);
          expect(diff.maxDiff).toBeLessThan(1e-5);
          const proj = await compareWeights(join(single, step, "projections.safetensors"), join(sharded, step, "projections.safetensors"));
          expect(proj.maxDiff).toBeLessThan(1e-5);
        }
        expect(
          (await compareWeights(join(suite.models.student, "model.safetensors"), join(sharded, "gs4", "model", "model.safetensors")))
            .maxDiff,
        ).toBeGreaterThan(1e-4);
        const logitsOf = (dir: string, file = "logits.json") => (JSON.parse(readFileSync(join(dir, file), "utf8")) as number[][]).flat();
        const [a, b] = [logitsOf(single), logitsOf(sharded)];
        expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeLessThan(1e-5);
        for (const step of [2, 4]) {
          const [x, y] = [logitsOf(single, `logits-gs${step}.json`), logitsOf(sharded, `logits-gs${step}.json`)];
          expect(Math.max(...x.map((v, i) => Math.abs(v - y[i]!)))).toBeLessThan(1e-5);
        }
        // the checkpoint is a plain Hugging Face folder: from_pretrained loads it (here in the single worker)
        const config = JSON.parse(readFileSync(join(sharded, "gs4", "model", "config.json"), "utf8"));
        expect(config.architectures).toEqual(["BertForSequenceClassification"]);
        const loaded = await load(suite.worker, join(sharded, "gs4", "model"));
        const reloaded = (await loaded.predict(batch(9))).logits!.toArray() as number[][];
        expect(Math.max(...reloaded.flat().map((v, i) => Math.abs(v - b[i]!)))).toBeLessThan(1e-5);
        await loaded.dispose();
        // resuming a sharded run is refused, naming the option
        await expect(run(fsdp, "fsdp-resumed", join(sharded, "gs2"))).rejects.toThrow(
          /resumeFrom: .*distributed\.strategy 'fsdp' is not supported/,
        );
        // neither run left a sharded module behind: the students are whole again
        expect(await fsdp.callEach("call_python", { ref: "test/helpers/fsdp_probe.py:sharded_modules", args: {} })).toEqual([0, 0]);
      } finally {
        await fsdp.close();
      }
    },
  );
});

describe("distributed.strategy", () => {
  it("an unknown strategy is refused before anything starts, naming the field and the allowed values", async () => {
    const error = await WorkerGroup.start({ device: "cpu", distributed: { nprocPerNode: 2, strategy: "zero3" as never } }).catch(
      (e: unknown) => e,
    );
    expect((error as Error).name).toBe("ConfigError");
    expect((error as Error).message).toMatch(/strategy.*zero3.*ddp.*fsdp/s);
  });
});
