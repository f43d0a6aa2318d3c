/**
 * The teacher as a service: students whose teacher runs in a service worker end with the weights of the same run with
 * the teacher in-process; CURVE refuses unknown keys; plain tcp off loopback is refused; a service killed mid-run is a
 * TeacherServiceError within 2 s, and the run resumes once a service is back.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as zmq from "zeromq";
import {
  BasicDistiller,
  ConfigError,
  DistillCache,
  GeneralDistiller,
  type LoopOptions,
  MultiTeacherDistiller,
  Tensor,
} from "../src/index.js";
import { CAUSAL_LM_ADAPTOR, CausalLMDistiller } from "../src/llm/index.js";
import { type ServedTeachers, TeacherService, TeacherServiceError } from "../src/service/index.js";
import type { ModelHandle } from "../src/worker/model-handle.js";
import { Worker } from "../src/worker/worker.js";
import { compareWeights, useRealWorker } from "./helpers/fixtures.js";
import { lmBatch, makeTinyGpt2, randomIds } from "./helpers/tiny-gpt2.js";

function makeBatch(seed: number): Record<string, Tensor> {
  const ids = Array.from({ length: 2 }, (_, i) => Array.from({ length: 6 }, (_, j) => BigInt(1 + ((seed * 31 + i * 7 + j * 13) % 99))));
  return {
    input_ids: Tensor.from(ids, "int64"),
    attention_mask: Tensor.from(
      ids.map((r) => r.map(() => 1n)),
      "int64",
    ),
    labels: Tensor.from([BigInt(seed % 3), BigInt((seed + 1) % 3)], "int64"),
  };
}

const data = Array.from({ length: 4 }, (_, i) => makeBatch(i));
const adaptorT = (_b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states });
const adaptorS = (_b: any, o: any) => ({ logits: o.logits, hidden: o.hidden_states, losses: o.loss });
const general = {
  intermediateMatches: [{ layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 2, proj: ["linear", 32, 48] }],
} as const;

async function maxDiff(a: string, b: string): Promise<number> {
  const r = await compareWeights(join(a, "model", "model.safetensors"), join(b, "model", "model.safetensors"));
  expect(r.common).toBeGreaterThan(30);
  return r.maxDiff;
}

describe("TeacherService options", () => {
  it("refuses bad options with the field and the fix, before starting anything", async () => {
    const model = { path: "teacher-folder" };
    await expect(TeacherService.start({ model, adaptorT, endpoint: "tcp://0.0.0.0:5555" })).rejects.toThrow(
      /endpoint: 'tcp:\/\/0\.0\.0\.0:5555' is not a loopback address.*pass curve: \{ clientKeys/,
    );
    await expect(TeacherService.start({ model, adaptorT, endpoint: "tcp://192.168.1.20:*" })).rejects.toBeInstanceOf(ConfigError);
    await expect(TeacherService.start({ model, models: [model], adaptorT })).rejects.toThrow(/models: give the teachers/);
    await expect(TeacherService.start({ model, adaptorT, curve: { clientKeys: ["short"] } })).rejects.toThrow(
      /curve\.clientKeys\[0\]: 'short'/,
    );
    await expect(TeacherService.start({ model, adaptorT, maxBatchRows: -1 })).rejects.toThrow(/maxBatchRows: -1/);
    await expect(TeacherService.start({ model, adaptorT: [adaptorT, adaptorT] })).rejects.toThrow(/adaptorT: 2 adaptors for 1 teachers/);
    await expect(TeacherService.start({ model, adaptorT, endpont: "tcp" } as never)).rejects.toThrow(/unknown option 'endpont'/);
    await expect(TeacherService.start({ model, adaptorT, mixedPrecision: "fp8" as never })).rejects.toThrow(
      /mixedPrecision: 'fp8': expected "no", "bf16" or "fp16"/,
    );
  });
});

// each test starts service workers (a torch import each): over 20 s on a loaded machine
describe.skipIf(!process.env.TEXTBREWER_SLOW_TESTS)("TeacherService (real workers)", () => {
  const suite = useRealWorker({
    models: { teacher: { layers: 4, hidden: 48, seed: 3 }, teacher2: { layers: 2, hidden: 48, seed: 4 }, student: { layers: 2, seed: 6 } },
  });
  const { tmp, models } = suite;

  async function distil(
    kind: "basic" | "general",
    outputDir: string,
    teacher: ServedTeachers | "in-process",
    options: Partial<LoopOptions> = {},
    worker: Worker = suite.worker,
  ): Promise<void> {
    const student = await worker.loadModel({ path: models.student, task: "sequence-classification" });
    const local: ModelHandle | null =
      teacher === "in-process" ? await worker.loadModel({ path: models.teacher, task: "sequence-classification" }) : null;
    try {
      const Distiller = kind === "basic" ? BasicDistiller : GeneralDistiller;
      await new Distiller({
        trainConfig: { outputDir, device: "cpu", seed: 5, ckptSteps: 2 },
        distillConfig: kind === "general" ? (general as never) : { temperature: 2 },
        student,
        ...(local ? { teacher: local, adaptorT } : { teacher: teacher as ServedTeachers }),
        adaptorS,
      }).train({ optimizer: { lr: 3e-3 }, data, numSteps: 6, progress: false, ...options });
    } finally {
      await student.dispose().catch(() => undefined);
      await local?.dispose().catch(() => undefined);
    }
  }

  const privateTmp = (name: string): string => {
    const path = join(tmp.path, name);
    mkdirSync(path, { recursive: true });
    return path;
  };

  const serve = (extra: Partial<Parameters<typeof TeacherService.start>[0]> = {}) =>
    TeacherService.start({ model: { path: models.teacher, task: "sequence-classification" }, adaptorT, device: "cpu", ...extra });

  it.each(["basic", "general"] as const)("%s: a run with the teacher behind a service equals the in-process run (1e-6)", async (kind) => {
    const inProcess = join(tmp.path, `${kind}-in-process`);
    const served = join(tmp.path, `${kind}-served`);
    await distil(kind, inProcess, "in-process");
    await using service = await serve();
    await distil(kind, served, service);
    expect(await maxDiff(join(inProcess, "gs6"), join(served, "gs6"))).toBeLessThanOrEqual(1e-6);
    const stats = await service.stats();
    expect(stats.requests).toBe(7); // the preflight and six steps: one request each, none lost or repeated
    expect(stats.errors).toBe(0);
  });

  it("mixedPrecision: the teacher runs under bfloat16 autocast in the service; the run stays close to the float32 one", async () => {
    const exact = join(tmp.path, "amp-float32");
    const half = join(tmp.path, "amp-bf16");
    {
      await using service = await serve();
      await distil("basic", exact, service);
    }
    await using service = await serve({ mixedPrecision: "bf16" });
    await distil("basic", half, service);
    const diff = await maxDiff(join(exact, "gs6"), join(half, "gs6"));
    expect(diff).toBeGreaterThan(0); // the teacher's outputs did change
    expect(diff).toBeLessThan(1e-2);
  });

  it("MultiTeacherDistiller reads every teacher of the service and equals the in-process run (1e-6)", async () => {
    const paths = [models.teacher, models.teacher2];
    const run = async (outputDir: string, teachers: ServedTeachers | null): Promise<void> => {
      const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
      const local = teachers
        ? []
        : await Promise.all(paths.map((path) => suite.worker.loadModel({ path, task: "sequence-classification" })));
      try {
        await new MultiTeacherDistiller({
          trainConfig: { outputDir, device: "cpu", seed: 5, ckptSteps: 3 },
          distillConfig: { temperature: 1 },
          student,
          ...(teachers ? { teachers } : { teachers: local, adaptorT }),
          adaptorS,
        }).train({ optimizer: { lr: 3e-3 }, data, numSteps: 3, progress: false });
      } finally {
        await Promise.all([student, ...local].map((m) => m.dispose()));
      }
    };
    await run(join(tmp.path, "multi-in-process"), null);
    await using service = await TeacherService.start({
      models: paths.map((path) => ({ path, task: "sequence-classification" as const })),
      adaptorT,
      device: "cpu",
    });
    await run(join(tmp.path, "multi-served"), service);
    expect(await maxDiff(join(tmp.path, "multi-in-process", "gs3"), join(tmp.path, "multi-served", "gs3"))).toBeLessThanOrEqual(1e-6);
  });

  it("topK: the service sends top-k targets; the run equals one reading a top-k teacher cache, and writes such a cache through", async () => {
    const cached = (dir: string) => ({ teacherCache: { dir, topK: 2 } }) as never;
    // the reference: an in-process teacher's top-2 cached by a first run, read from disk by a second
    const refCache = join(tmp.path, "topk-reference-cache");
    await distil("basic", join(tmp.path, "topk-fill"), "in-process", cached(refCache));
    const reference = join(tmp.path, "topk-reference");
    await distil("basic", reference, "in-process", cached(refCache));
    await using service = await serve();
    const served = join(tmp.path, "topk-served");
    await distil("basic", served, service.client({ topK: 2 }));
    expect(await maxDiff(join(reference, "gs6"), join(served, "gs6"))).toBeLessThanOrEqual(1e-6);

    const through = join(tmp.path, "topk-through-cache");
    await distil("basic", join(tmp.path, "topk-through-1"), service.client({ topK: 2 }), cached(through));
    const before = (await service.stats()).requests;
    await distil("basic", join(tmp.path, "topk-through-2"), service.client({ topK: 2 }), cached(through));
    expect((await service.stats()).requests - before).toBe(1); // the preflight: every step read the disk
    expect(await maxDiff(join(reference, "gs6"), join(tmp.path, "topk-through-2", "gs6"))).toBeLessThanOrEqual(1e-6);

    // hidden matches read dense features beside the top-k KD targets; at k = V (3 classes) the KD equals the dense one
    await distil("general", join(tmp.path, "topk-general-in-process"), "in-process");
    await distil("general", join(tmp.path, "topk-general-served"), service.client({ topK: 3 }));
    const general = await maxDiff(join(tmp.path, "topk-general-in-process", "gs6"), join(tmp.path, "topk-general-served", "gs6"));
    // the sparse and dense formulas round differently in float32, and Adam's normalised steps carry that into the
    // weights: a few hundredths of one step of lr 3e-3 (a wrong objective moves them by whole steps)
    expect(general).toBeLessThanOrEqual(1e-4);

    // refused before any step, with the field and the fix
    await expect(
      distil("basic", join(tmp.path, "topk-k3"), service.client({ topK: 2 }), { teacherCache: { dir: through, topK: 3 } } as never),
    ).rejects.toThrow(/teacherCache: the teacher service client sends top-k targets \(topK 2.*open the cache with the same topK/);
    const student = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    try {
      const refusedWith = (distillConfig: object) =>
        new BasicDistiller({
          trainConfig: { outputDir: join(tmp.path, "topk-refused"), device: "cpu" },
          distillConfig,
          student,
          teacher: service.client({ topK: 2 }),
          adaptorS,
        }).train({ optimizer: { lr: 1e-3 }, data, numSteps: 1, progress: false });
      await expect(refusedWith({ kdLossType: "mse" })).rejects.toThrow(
        /'mse' cannot learn from top-k teacher targets \(teacher service client topK: 2\)/,
      );
      await expect(refusedWith({ probabilityShift: true })).rejects.toThrow(/probabilityShift: true: the teacher service client's topK: 2/);
      await expect(refusedWith({ temperatureScheduler: { type: "flsw", beta: 1, gamma: 2 } })).rejects.toThrow(
        /temperatureScheduler: 'flsw' varies the temperature/,
      );
    } finally {
      await student.dispose();
    }
    expect(() => service.client({ tail: "bucket" })).toThrow(/tail: 'bucket' applies to top-k targets only/);
    expect(() => service.client({ topK: 0 })).toThrow(/topK: 0: expected a whole number ≥ 1/);
  });

  it("CausalLMDistiller: a service's top-k targets equal a top-k cache's; on-policy steps score the student's samples there", async () => {
    const vocab = 40;
    const [teacherDir, studentDir] = await Promise.all([
      makeTinyGpt2(join(tmp.path, "lm-teacher"), { vocab, seed: 1, initializerRange: 0.3 }),
      makeTinyGpt2(join(tmp.path, "lm-student"), { vocab, seed: 2, layers: 1 }),
    ]);
    const lmData = Array.from({ length: 3 }, (_, i) => lmBatch(randomIds(2, 10, vocab, 60 + i), [10, 7], 2));
    const run = async (outputDir: string, teacher: ServedTeachers | "in-process", options: Partial<LoopOptions> = {}, onPolicy = false) => {
      const student = await suite.worker.loadModel({ path: studentDir, task: "causal-lm" });
      const local = teacher === "in-process" ? await suite.worker.loadModel({ path: teacherDir, task: "causal-lm" }) : null;
      try {
        await new CausalLMDistiller({
          trainConfig: { outputDir, seed: 3, ckptSteps: 4 },
          distillConfig: { kdLossType: "token_kl", temperature: 2 },
          teacher: local ?? (teacher as ServedTeachers),
          student,
          ...(onPolicy ? { onPolicy: { lmbda: 1, promptLength: 3 } } : {}),
        }).train({ optimizer: { type: "AdamW", lr: 1e-2 }, data: lmData, numSteps: 4, progress: false, ...options });
      } finally {
        await Promise.all([student.dispose(), local?.dispose()]);
      }
    };
    const lmDiff = async (a: string, b: string) => {
      const r = await compareWeights(join(a, "gs4", "model", "model.safetensors"), join(b, "gs4", "model", "model.safetensors"));
      expect(r.common).toBeGreaterThan(5);
      return r.maxDiff;
    };
    const cacheDir = join(tmp.path, "lm-topk-cache");
    await run(join(tmp.path, "lm-fill"), "in-process", { teacherCache: { dir: cacheDir, topK: 5 } } as never);
    await run(join(tmp.path, "lm-cached"), "in-process", { teacherCache: { dir: cacheDir, topK: 5 } } as never);
    // the first run wrote its teacher's top-k through; the second read every example from disk
    const counters = JSON.parse(
      readFileSync(join(tmp.path, "lm-cached", "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .at(-1)!,
    ).counters;
    expect(counters).toMatchObject({ cacheMisses: 0, teacherForwards: 0 });
    expect(counters.cacheHits).toBeGreaterThan(0);
    await using service = await TeacherService.start({
      model: { path: teacherDir, task: "causal-lm" },
      adaptorT: CAUSAL_LM_ADAPTOR,
      device: "cpu",
    });
    await run(join(tmp.path, "lm-served-topk"), service.client({ topK: 5 }));
    expect(await lmDiff(join(tmp.path, "lm-cached"), join(tmp.path, "lm-served-topk"))).toBeLessThanOrEqual(1e-6);
    // on-policy: the batch the teacher scores is the student's samples, made when the step runs (nothing sent ahead)
    await run(join(tmp.path, "lm-policy-in-process"), "in-process", {}, true);
    await run(join(tmp.path, "lm-policy-served"), service, {}, true);
    expect(await lmDiff(join(tmp.path, "lm-policy-in-process"), join(tmp.path, "lm-policy-served"))).toBeLessThanOrEqual(1e-6);
  });

  it("CURVE: an allow-listed key connects, any other key is refused with a clear error and no hang", async () => {
    const allowed = zmq.curveKeyPair();
    await using service = await serve({ endpoint: "tcp", curve: { clientKeys: [allowed.publicKey] } });
    expect(service.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const serverKey = service.publicKey!;
    const ok = await TeacherService.connect({ endpoint: service.endpoint, serverKey, keyPair: allowed, timeoutMs: 5000 });
    expect(ok.teacherCount).toBe(1);
    const started = Date.now();
    const refused = TeacherService.connect({ endpoint: service.endpoint, serverKey, keyPair: zmq.curveKeyPair(), timeoutMs: 5000 });
    await expect(refused).rejects.toBeInstanceOf(TeacherServiceError);
    await expect(refused).rejects.toThrow(/refused this client's CURVE key: it is not on the service's allow-list/);
    expect(Date.now() - started).toBeLessThan(4000);
    expect((await service.stats()).refusedKeys).toBeGreaterThanOrEqual(1);
    // a student whose worker holds a key the service never allowed fails its first step the same way
    const stranger = zmq.curveKeyPair();
    const link = { ...(await service.client().link()), publicKey: stranger.publicKey, secretKey: stranger.secretKey, timeoutMs: 5000 };
    const forged: ServedTeachers = {
      kind: "teacher-service",
      endpoint: service.endpoint,
      teacherCount: 1,
      adaptorT: service.adaptorT,
      teacherModels: null,
      link: async () => link,
    };
    const run = distil("basic", join(tmp.path, "forged"), forged, { numSteps: 2 });
    await expect(run).rejects.toBeInstanceOf(TeacherServiceError);
    await expect(run).rejects.toThrow(/refused this client's CURVE key/);
  });

  it("a service killed mid-run fails the student's step with TeacherServiceError within 2 s; resumeFrom then equals the uninterrupted run", async () => {
    const uninterrupted = join(tmp.path, "kill-uninterrupted");
    const killed = join(tmp.path, "kill-interrupted");
    {
      await using service = await serve();
      await distil("general", uninterrupted, service);
    }
    // a SIGKILLed worker leaves what torch put in its temp folder: this one is the suite's
    const service = await serve({ env: { TMPDIR: privateTmp("killed-service") } });
    let killedAt = 0;
    const run = distil("general", killed, service, {
      callback: ({ step }) => {
        if (step === 4) {
          killedAt = Date.now();
          process.kill(service.pid, "SIGKILL");
        }
      },
    });
    await expect(run).rejects.toBeInstanceOf(TeacherServiceError);
    const failedAfter = Date.now() - killedAt;
    await expect(run).rejects.toThrow(new RegExp(`teacher service at ${service.endpoint.replace(/[/.]/g, "\\$&")} closed the connection`));
    expect(failedAfter).toBeLessThan(2000);
    await service.close();
    await using again = await serve();
    await distil("general", killed, again, { resumeFrom: join(killed, "gs4") });
    expect(await maxDiff(join(uninterrupted, "gs6"), join(killed, "gs6"))).toBe(0);
  });

  it("two students at once on one service end with the weights each gets alone; a student that disconnects never stalls the other", async () => {
    await using service = await serve({ maxBatchRows: 64 });
    const second = await Worker.start({ device: "cpu" });
    const victim = await Worker.start({ device: "cpu", env: { TMPDIR: privateTmp("killed-student") } });
    try {
      // two student configs: another seed and learning rate
      const run = async (worker: Worker, outputDir: string, who: "a" | "b", options: Partial<LoopOptions> = {}): Promise<void> => {
        const student = await worker.loadModel({ path: models.student, task: "sequence-classification" });
        try {
          await new BasicDistiller({
            trainConfig: { outputDir, device: "cpu", seed: who === "a" ? 5 : 9, ckptSteps: 2 },
            distillConfig: { temperature: 2 },
            student,
            teacher: service,
            adaptorS,
          }).train({ optimizer: { lr: who === "a" ? 3e-3 : 1e-3 }, data, numSteps: 6, progress: false, ...options });
        } finally {
          await student.dispose().catch(() => undefined);
        }
      };
      const dirs = (name: string) => ({ a: join(tmp.path, `${name}-a`), b: join(tmp.path, `${name}-b`) });
      const alone = dirs("alone");
      await run(suite.worker, alone.a, "a");
      await run(second, alone.b, "b");
      const together = dirs("together");
      await Promise.all([run(suite.worker, together.a, "a"), run(second, together.b, "b")]);
      expect(await maxDiff(join(alone.a, "gs6"), join(together.a, "gs6"))).toBeLessThanOrEqual(1e-6);
      expect(await maxDiff(join(alone.b, "gs6"), join(together.b, "gs6"))).toBeLessThanOrEqual(1e-6);
      const stats = await service.stats();
      expect(stats.clients).toBeGreaterThanOrEqual(4);
      expect(stats.forwards).toBeLessThanOrEqual(stats.requests);

      const left = dirs("left");
      const gone = run(victim, left.a, "a", {
        callback: ({ step }) => {
          if (step === 2) process.kill(victim.pid, "SIGKILL");
        },
      });
      await Promise.all([expect(gone).rejects.toThrow(), run(second, left.b, "b")]);
      expect(await maxDiff(join(alone.b, "gs6"), join(left.b, "gs6"))).toBeLessThanOrEqual(1e-6);
    } finally {
      await Promise.all([second.close(), victim.close()]);
    }
  });

  it("the teacher cache: a run on the service writes it through, a later run reads it from disk, and fill() runs on the service", async () => {
    await using service = await serve();
    const dir = join(tmp.path, "cache-through");
    const first = join(tmp.path, "cached-first");
    const second = join(tmp.path, "cached-second");
    await distil("basic", first, service, { teacherCache: { dir } } as never);
    const afterFirst = (await service.stats()).requests;
    await distil("basic", second, service, { teacherCache: { dir } } as never);
    // every batch of the second run is on disk: the service answers its preflight alone
    expect((await service.stats()).requests - afterFirst).toBe(1);
    expect(await maxDiff(join(first, "gs6"), join(second, "gs6"))).toBeLessThanOrEqual(1e-6);

    const filled = await DistillCache.open({ teachers: service, dir: join(tmp.path, "cache-filled") });
    try {
      const counters = await filled.fill({ data, batchSize: 8 });
      expect(counters.teacherForwards).toBe(1);
    } finally {
      await filled.close();
    }
  });
});
