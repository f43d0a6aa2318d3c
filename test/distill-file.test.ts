/**
 * `textbrewer distill <run file>`: the file's errors (file, line, path, did you mean), TextBrewer's snake_case
 * configs, a whole run through the CLI on a tiny teacher and tiny data files, checked against the same run
 * written as a script with the public API (identical weights), and examples/configs/sentiment.yaml against the
 * sentiment demo's student step, both run on a subset with the demo's settings shrunk (identical losses and weights).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { writeSentimentRunData } from "../examples/configs/sentiment-data.js";
import { DEFAULT_SETTINGS, type DemoSettings, runSentimentDemo } from "../examples/sentiment.js";
import { loadSentiment, splitSentiment } from "../examples/shared/sentiment.js";
import { makeBatches, rowLengths, seededRng } from "../src/data/index.js";
import { type AdaptorFn, GeneralDistiller, NO_DECAY_GROUP, Tensor } from "../src/index.js";
import { loadRunFile, parseRunFile, RunFileError } from "../src/run-config/load.js";
import { bestCheckpoint } from "../src/run-config/run.js";
import { tinyDemoSettings } from "./helpers/demo-settings.js";
import { compareWeights, makeTinyBert, makeWordTokenizer, useRealWorker, useTempDir } from "./helpers/fixtures.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "dist", "cli", "main.js");
// the CLI's worker inherits this process's thread settings, as the suite's worker does: the end-to-end run is compared
// bit for bit with a script run in that worker, and reductions split over another thread count round differently
const cli = (args: string[], cwd: string) => execa(process.execPath, [BIN, ...args], { cwd, reject: false, timeout: 300_000 });

const VALID = `teacher:
  path: teacher
student:
  create:
    config: { num_hidden_layers: 2 }
    layerMap: [0, 3]
distiller:
  type: GeneralDistiller
  trainConfig: { seed: 7, ckptFrequency: 2, device: cpu }
  distillConfig:
    temperature: 2
    intermediateMatches:
      - { layerT: 0, layerS: 0, feature: hidden, loss: hidden_mse, weight: 1 }
      - { layerT: 4, layerS: 2, feature: hidden, loss: hidden_mse, weight: 1 }
data:
  train: train.jsonl
  dev: dev.csv
  maxLength: 16
  batchSize: 4
optimizer: { type: AdamW, lr: 1.0e-3, weightDecay: 0.01, groups: [{ pattern: "bias|LayerNorm\\\\.weight$|layer_norm\\\\.weight$", weightDecay: 0 }] }
scheduler: { type: linear, warmupRatio: 0.1 }
training: { numEpochs: 2, maxGradNorm: 1 }
evaluation: { metric: accuracy, split: dev }
output: { dir: runs/cli }
`;

const SENTIMENT_YAML = join(ROOT, "examples", "configs", "sentiment.yaml");

/**
 * examples/configs/sentiment.yaml (parsed) with every value the demo's settings decide set from `s`: for the default
 * settings it is the file as checked in; for shrunk ones, the run file of a demo run with them.
 */
function sentimentRunFile(doc: any, s: DemoSettings, stepsPerEpoch: number): any {
  const out = structuredClone(doc);
  out.student.create.config.num_hidden_layers = s.student.layers;
  out.student.create.layerMap = s.student.layerMap;
  if (s.student.frozen) out.student.frozen = s.student.frozen;
  out.distiller.trainConfig.seed = s.seed;
  out.distiller.trainConfig.ckptFrequency = Math.min(s.student.checkpointsPerEpoch, stepsPerEpoch);
  Object.assign(out.distiller.distillConfig, {
    temperature: s.student.temperature,
    kdLossType: s.student.kdLossType,
    hardLabelWeight: s.student.hardLabelWeight,
    intermediateMatches: s.student.matches,
  });
  out.data.train = Array.from({ length: s.student.epochs }, (_, e) => `runs/config-demo/data/train-epoch${e}.jsonl`);
  out.data.maxLength = s.maxLength;
  out.data.batchSize = s.batchSize;
  out.optimizer.lr = s.student.lr;
  out.scheduler.warmupRatio = s.student.warmupRatio;
  out.training.numEpochs = s.student.epochs;
  return out;
}

function problemOf(text: string, file = "run.yaml"): string {
  try {
    parseRunFile(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(RunFileError);
    return (error as Error).message;
  }
  throw new Error("the run file was accepted");
}

describe("run file errors", () => {
  it("names the file, the line and the path of an unknown key, with the closest known one", () => {
    const text = VALID.replace("    temperature: 2\n", "    temperature: 2\n    kdLossTyp: ce\n");
    const line = text.split("\n").indexOf("    kdLossTyp: ce") + 1;
    expect(problemOf(text)).toBe(
      `Invalid run file run.yaml:${line}: distiller.distillConfig: unknown key 'kdLossTyp' (did you mean 'kdLossType'?)`,
    );
    const top = VALID.replace("optimizer:", "optimiser:");
    const message = problemOf(top);
    expect(message).toContain(
      `run.yaml:${top.split("\n").findIndex((l) => l.startsWith("optimiser:")) + 1}: unknown key 'optimiser' (did you mean 'optimizer'?)`,
    );
  });

  it("names the line of a bad value, in YAML and in JSON", () => {
    const text = VALID.replace("training: { numEpochs: 2, maxGradNorm: 1 }", "training:\n  numEpochs: 0");
    const line = text.split("\n").indexOf("  numEpochs: 0") + 1;
    expect(problemOf(text)).toContain(`run.yaml:${line}: training.numEpochs: received 0; expected an integer > 0`);
    const json = JSON.stringify(
      {
        teacher: { path: "t" },
        student: { path: "s" },
        data: { train: "x.jsonl" },
        optimizer: { lr: 1 },
        training: { numEpochs: 1, numEpoch: 2 },
      },
      null,
      2,
    );
    const jsonLine = json.split("\n").findIndex((l) => l.includes('"numEpoch"')) + 1;
    expect(problemOf(json, "run.json")).toContain(`run.json:${jsonLine}: training: unknown key 'numEpoch' (did you mean 'numEpochs'?)`);
    expect(problemOf(VALID.replace("    layerMap: [0, 3]", "    layerMap: [0, -3]"))).toMatch(
      /run\.yaml:6: student\.create\.layerMap\[1\]: received -3/,
    );
  });

  it("takes TextBrewer's snake_case configs, and names their mistakes in snake_case", () => {
    const snake = VALID.replace(
      /distillConfig:\n(?: {4}.*\n)+/,
      "distillConfig:\n    temperature: 2\n    kd_loss_type: ce\n    intermediate_matches:\n      - { layer_T: 0, layer_S: 0, feature: hidden, loss: hidden_mse, weight: 1 }\n",
    );
    const loaded = parseRunFile(snake, "run.yaml");
    expect(loaded.distillConfig.intermediateMatches[0]).toMatchObject({ layerT: 0, layerS: 0, loss: "hidden_mse" });
    const wrong = snake.replace("layer_S: 0", "layer_s: 0");
    expect(problemOf(wrong)).toMatch(/run\.yaml:14: .*unknown key 'layer_s'.*did you mean 'layer_S'/);
  });

  it("refuses YAML it cannot read and a file that is not there, naming them", () => {
    expect(problemOf("teacher: [unclosed\n")).toMatch(/^Invalid run file run\.yaml:\d+: not valid YAML or JSON/);
    expect(() => loadRunFile("/nonexistent/run.yaml")).toThrow(/run\.yaml: cannot read it \(ENOENT\)/);
  });

  it("the CLI prints the problem on stderr and exits 1", async () => {
    const tmp = await import("node:os").then((os) => os.tmpdir());
    const r = await cli(["distill", "/nonexistent/run.yaml"], tmp);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe("textbrewer: Invalid run file /nonexistent/run.yaml: cannot read it (ENOENT)");
  });
});

describe("the run files the project shows", () => {
  it("the README's run file is valid", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const block = /```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const { run, distillConfig } = parseRunFile(block!, "README.md");
    expect(run.student.create?.layerMap).toEqual([0, 4, 8]);
    expect(distillConfig.intermediateMatches).toHaveLength(1);
  });

  it("keeps the checkpoint the demo keeps: the best dev score, a tie to the later step", () => {
    const at = (step: number, score: number) => ({ step, dir: `gs${step}`, score });
    expect(bestCheckpoint([at(75, 0.88), at(150, 0.9), at(225, 0.89), at(300, 0.9)])?.step).toBe(300);
    expect(bestCheckpoint([at(75, 0.91), at(150, 0.9)])?.step).toBe(75);
    expect(bestCheckpoint([])).toBeNull();
  });

  it("is valid and holds the demo's student recipe", () => {
    const { run, trainConfig, distillConfig } = loadRunFile(join(ROOT, "examples", "configs", "sentiment.yaml"));
    const s = DEFAULT_SETTINGS;
    expect(run.student.create).toMatchObject({ config: { num_hidden_layers: s.student.layers }, layerMap: s.student.layerMap });
    expect(distillConfig).toMatchObject({ temperature: s.student.temperature, kdLossType: s.student.kdLossType, hardLabelWeight: 0 });
    expect(distillConfig.intermediateMatches).toMatchObject(s.student.matches);
    expect(trainConfig).toMatchObject({ seed: s.seed, ckptFrequency: s.student.checkpointsPerEpoch });
    expect(run.optimizer).toMatchObject({ type: "AdamW", lr: s.student.lr, weightDecay: 0.01, groups: [NO_DECAY_GROUP] });
    expect(run.scheduler).toEqual({ type: "linear", warmupRatio: s.student.warmupRatio });
    expect(run.training).toEqual({ numEpochs: s.student.epochs, maxGradNorm: 1 });
    expect(run.data).toMatchObject({ maxLength: s.maxLength, batchSize: s.batchSize, bucketByLength: true });
    expect(run.data.train).toHaveLength(s.student.epochs);
    // the teacher's checkpoint holds no tokenizer files: the demo's tokenizer is named
    expect(run.data.tokenizer).toMatch(/runs\/config-demo\/tokenizer$/);
    // every value the demo's settings decide is the settings' (the end-to-end test below shrinks them the same way)
    const doc = parseYaml(readFileSync(SENTIMENT_YAML, "utf8"));
    const train = splitSentiment(loadSentiment(), { seed: s.seed }).train.length;
    const stepsPerEpoch = Math.ceil((train * (1 + s.student.augmentedCopies)) / s.batchSize);
    expect(sentimentRunFile(doc, s, stepsPerEpoch)).toEqual(doc);
    expect(doc.evaluation).toEqual({ metric: "accuracy", split: "dev", batchSize: 64 });
  });
});

describe("textbrewer distill, end to end", () => {
  const tmp = useTempDir("tbts-distill-file-");
  const suite = useRealWorker();
  const WORDS = ["good", "bad", "film", "plot", "fine", "dull", "great", "awful"];

  async function project(dir: string): Promise<void> {
    await makeTinyBert(join(dir, "teacher"), { layers: 4, numLabels: 2, dropout: 0 });
    await makeWordTokenizer(join(dir, "teacher"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...WORDS]);
    const text = (i: number) => `${WORDS[i % 2]} ${WORDS[2 + (i % 3)]} ${i % 4 ? WORDS[4 + (i % 4)] : ""}`.trim();
    const train = Array.from({ length: 14 }, (_, i) => JSON.stringify({ text: text(i), label: i % 2 ? "negative" : "positive" }));
    writeFileSync(join(dir, "train.jsonl"), `${train.join("\n")}\n`);
    const dev = Array.from({ length: 6 }, (_, i) => `"${text(i + 3)}",${(i + 3) % 2 ? "negative" : "positive"}`);
    writeFileSync(join(dir, "dev.csv"), `text,label\n${dev.join("\n")}\n`);
    writeFileSync(join(dir, "run.yaml"), VALID);
  }

  beforeAll(() => project(tmp.path));

  it("--dry-run prints the plan and runs the preflight, writing nothing", async () => {
    const dir = tmp.path;
    const r = await cli(["distill", "run.yaml", "--dry-run"], dir);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("teacher: ");
    expect(r.stdout).toContain("distiller: GeneralDistiller, KD ce at T=2, hidden_mse S0↔T0, hidden_mse S2↔T4");
    expect(r.stdout).toContain("dry run: models, data and the preflight check on the first batch are fine");
    expect(existsSync(join(dir, "runs"))).toBe(false);
    // the preflight really runs: a layer the teacher lacks fails it
    writeFileSync(join(dir, "bad-layer.yaml"), VALID.replace("layerT: 4, layerS: 2", "layerT: 9, layerS: 2"));
    const bad = await cli(["distill", "bad-layer.yaml", "--dry-run"], dir);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/layerT|layer 9|out of range/i);
  });

  it("trains as the file says, keeps the resolved file, and equals the same run written as a script", async () => {
    const dir = tmp.path;
    const r = await cli(["distill", "run.yaml"], dir);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = join(dir, "runs", "cli");
    const resolved = JSON.parse(readFileSync(join(out, "run-config.json"), "utf8"));
    expect(resolved.teacher.path).toBe(join(dir, "teacher"));
    expect(resolved.data).toMatchObject({ batchSize: 4, text: "text", label: "label", bucketByLength: true });
    expect(resolved.distiller.distillConfig).toMatchObject({ kdLossType: "ce", temperature: 2 });
    expect(resolved.distiller.trainConfig).toMatchObject({ outputDir: out, seed: 7 });
    const summary = JSON.parse(readFileSync(join(out, "run-summary.json"), "utf8"));
    expect(summary.labels).toEqual(["negative", "positive"]);
    expect(summary.checkpoints.map((c: { step: number }) => c.step)).toEqual([2, 4, 6, 8]);
    const last = readdirSync(out)
      .filter((f) => /^gs\d+$/.test(f))
      .sort((a, b) => Number(a.slice(2)) - Number(b.slice(2)))
      .at(-1)!;

    // the same run as a script: same tokenizer, batches, configs and adaptor
    const worker = suite.worker;
    const teacher = await worker.loadModel({ path: join(dir, "teacher"), task: "sequence-classification" });
    const tokenizer = await worker.loadTokenizer(join(dir, "teacher"));
    const rows = readFileSync(join(dir, "train.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { text: string; label: string });
    const { token_type_ids: _drop, ...enc } = await tokenizer.encode(
      rows.map((x) => x.text),
      { maxLength: 16, padding: "longest", truncation: true },
    );
    const encoded: Record<string, Tensor> = {
      ...enc,
      labels: Tensor.from(
        rows.map((x) => BigInt(x.label === "negative" ? 0 : 1)),
        "int64",
      ),
    };
    await worker.seed(7);
    const student = await worker.createModel({ config: { num_hidden_layers: 2 }, initFrom: teacher, layerMap: [0, 3] });
    const adaptor: AdaptorFn = (b, o) => ({ logits: o.logits, hidden: o.hidden_states, inputs_mask: b.attention_mask, losses: o.loss });
    const script = join(dir, "script");
    await new GeneralDistiller({
      trainConfig: { seed: 7, ckptFrequency: 2, device: "cpu", outputDir: script },
      distillConfig: {
        temperature: 2,
        intermediateMatches: [
          { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
          { layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 },
        ],
      },
      teacher,
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    }).train({
      optimizer: { type: "AdamW", lr: 1e-3, weightDecay: 0.01, groups: [NO_DECAY_GROUP] },
      scheduler: { type: "linear", warmupRatio: 0.1 },
      data: (epoch: number) =>
        makeBatches(encoded, { batchSize: 4, rng: seededRng(7 * 1000 + epoch), lengths: rowLengths(encoded.attention_mask!) }),
      numEpochs: 2,
      maxGradNorm: 1,
      teacherCache: false,
    });
    const weights = (root: string) => {
      const folder = join(root, last);
      const file = readdirSync(folder, { recursive: true })
        .map(String)
        .find((f) => f.endsWith("model.safetensors"))!;
      return join(folder, file);
    };
    const cmp = await compareWeights(weights(out), weights(script));
    expect([cmp.onlyA, cmp.onlyB]).toEqual([[], []]);
    expect(cmp.maxDiff).toBe(0);
  });
});

describe("examples/configs/sentiment.yaml, end to end", () => {
  const suite = useRealWorker({ prefix: "tbts-sentiment-yaml-" });

  it("reproduces the demo's student: the same losses at every step, checkpoint, dev accuracy and weights", {
    timeout: 900_000,
  }, async () => {
    const dir = suite.tmp.path;
    const settings = tinyDemoSettings();
    const limit = { train: 96, dev: 32, test: 40 };
    const demoDir = join(dir, "runs", "demo");
    // the demo as `npm run demo` runs it (a teacher from scratch, shrunk), then the run file's data from it
    const demo = await runSentimentDemo({
      runDir: demoDir,
      worker: suite.worker,
      teacher: "scratch",
      settings,
      limit,
      log: () => {},
      progress: false,
    });
    const data = await writeSentimentRunData({ demoDir, outDir: join(dir, "runs", "config-demo"), settings, limit, worker: suite.worker });
    expect(data.tokenizer).toBe(join(demoDir, "teacher", "vocab"));
    const stepsPerEpoch = Math.ceil((limit.train * (1 + settings.student.augmentedCopies)) / settings.batchSize);
    const runFile = sentimentRunFile(parseYaml(readFileSync(SENTIMENT_YAML, "utf8")), settings, stepsPerEpoch);
    writeFileSync(join(dir, "sentiment.yaml"), stringifyYaml(runFile));
    const r = await cli(["distill", "sentiment.yaml"], dir);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = join(dir, "runs", "config-demo", "student");

    // every step: the loss, each term, the learning rates and the gradient norm
    const steps = (folder: string) =>
      readFileSync(join(folder, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((m) => m.step !== undefined && m.total !== undefined)
        .map(({ step, epoch, total, terms, weighted, lr, gradNorm }) => ({ step, epoch, total, terms, weighted, lr, gradNorm }));
    const demoSteps = steps(demoDir);
    expect(demoSteps).toHaveLength(settings.student.epochs * stepsPerEpoch);
    expect(steps(out)).toEqual(demoSteps);

    // the checkpoint kept (best dev accuracy, a tie to the later step), its dev and test accuracy, its weights
    const summary = JSON.parse(readFileSync(join(out, "run-summary.json"), "utf8"));
    const student = demo.rows.find((row) => row.model === "student")!;
    expect(summary.checkpoints).toHaveLength(settings.student.epochs * settings.student.checkpointsPerEpoch);
    expect(`gs${summary.best.step}`).toBe(demo.studentCheckpoint);
    expect(summary.best.score).toBe(student.devAccuracy);
    expect(summary.best.test).toBe(student.testAccuracy);
    const weights = (folder: string) =>
      join(
        folder,
        readdirSync(folder, { recursive: true })
          .map(String)
          .find((f) => f.endsWith("model.safetensors"))!,
      );
    const cmp = await compareWeights(weights(join(demoDir, demo.studentCheckpoint)), weights(summary.best.dir));
    expect([cmp.onlyA, cmp.onlyB]).toEqual([[], []]);
    expect(cmp.maxDiff).toBe(0);
  });
});
