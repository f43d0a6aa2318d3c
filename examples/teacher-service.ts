/**
 * The teacher as a service: one teacher in a TeacherService, two students with different configs (BasicDistiller
 * with a 2-layer student; GeneralDistiller with a 1-layer student and hidden-state matches) trained at the same
 * time in two workers of their own. Each student's worker reads the teacher's outputs from the service directly;
 * the teacher is never loaded in a student's worker. Prints each student's dev accuracy and the service's report.
 *
 *   npx tsx examples/teacher-service.ts
 *
 * The teacher is a 4-layer BERT fine-tuned on the spot on the synthetic task of examples/shared/synthetic.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BasicDistiller, BasicTrainer, GeneralDistiller, Worker } from "../src/index.js";
import { TeacherService } from "../src/service/index.js";
import { accuracy, bertConfig, syntheticBatches } from "./shared/synthetic.js";

const task = { vocab: 200, seq: 32, batch: 16 };
const train = syntheticBatches(16, 1, task);
const dev = syntheticBatches(8, 2, task);
const dir = mkdtempSync(join(tmpdir(), "teacher-service-"));
const adaptor = (batch: any, out: any) => ({ logits: out.logits, hidden: out.hidden_states, inputs_mask: batch.attention_mask });

try {
  const teacherDir = join(dir, "teacher");
  {
    await using worker = await Worker.start({ device: "cpu" });
    const teacher = await worker.createModel({
      config: bertConfig({ vocab: task.vocab, hidden: 64, layers: 4, heads: 4, labels: 2 }),
      task: "sequence-classification",
    });
    console.log("fine-tuning the teacher…");
    await new BasicTrainer({
      trainConfig: { outputDir: join(dir, "teacher-run"), ckptEpochFrequency: 100 },
      model: teacher,
      adaptor: (_b, o) => ({ losses: o.loss }),
    }).train({ optimizer: { lr: 1e-3 }, data: train, numEpochs: 4, progress: false });
    console.log(`teacher dev accuracy: ${(await accuracy(teacher, dev)).toFixed(3)}`);
    await teacher.save(teacherDir);
  }

  // the service: the teacher in a worker of its own, on a private ipc socket (the default)
  await using service = await TeacherService.start({
    model: { path: teacherDir, task: "sequence-classification" },
    adaptorT: adaptor,
    device: "cpu",
  });
  console.log(`teacher service at ${service.endpoint}`);

  // two students, each in its own worker; the first layers of the teacher start each of them
  const students = await Promise.all(
    [2, 1].map(async (layers) => {
      const worker = await Worker.start({ device: "cpu" });
      const model = await worker.loadModel({ path: teacherDir, task: "sequence-classification", config: { num_hidden_layers: layers } });
      return { worker, model };
    }),
  );
  try {
    const [a, b] = students as [(typeof students)[0], (typeof students)[0]];
    const started = performance.now();
    const runs = [
      new BasicDistiller({
        trainConfig: { outputDir: join(dir, "student-basic"), ckptEpochFrequency: 100 },
        distillConfig: { temperature: 4 },
        teacher: service,
        student: a.model,
        adaptorS: adaptor,
      }).train({ optimizer: { lr: 1e-3 }, data: train, numEpochs: 2, progress: false }),
      new GeneralDistiller({
        trainConfig: { outputDir: join(dir, "student-general"), ckptEpochFrequency: 100 },
        distillConfig: {
          temperature: 8,
          intermediateMatches: [
            { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
            { layerT: 4, layerS: 1, feature: "hidden", loss: "hidden_mse", weight: 1 },
          ],
        },
        teacher: service.client({ dtype: "bfloat16" }), // this student reads the teacher's outputs in bf16
        student: b.model,
        adaptorS: adaptor,
      }).train({ optimizer: { lr: 1e-3 }, data: train, numEpochs: 2, progress: false }),
    ];
    await Promise.all(runs);
    const seconds = (performance.now() - started) / 1000;
    const stats = await service.stats();
    console.log(
      JSON.stringify(
        {
          students: {
            basic2Layers: { devAccuracy: await accuracy(a.model, dev) },
            general1Layer: { devAccuracy: await accuracy(b.model, dev), outputs: "bfloat16" },
          },
          seconds: Number(seconds.toFixed(1)),
          service: {
            requests: stats.requests,
            forwards: stats.forwards,
            sharedForwards: stats.requests - stats.forwards,
            clients: stats.clients,
            busySeconds: Number((stats.busyMs / 1000).toFixed(2)),
            idleSeconds: Number((stats.idleMs / 1000).toFixed(2)),
          },
        },
        null,
        2,
      ),
    );
  } finally {
    await Promise.all(students.map((s) => s.worker.close()));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
