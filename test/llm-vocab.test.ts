import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { BasicDistiller, MultiTeacherDistiller, type Tensor, type TokenizerHandle, WorkerError } from "../src/index.js";
import { CausalLMDistiller } from "../src/llm/index.js";
import { batchJson, runReference, useRealWorker } from "./helpers/fixtures.js";
import { makeTinyGpt2s, makeTrainedTokenizers, type TinyGpt2Options, withLabels } from "./helpers/tiny-lm.js";

const TEXTS = [
  "the cat sat on the mat",
  "a dog ran in the park today",
  "the bird sang a song at dawn",
  "we read a book by the fire",
  "the sun rose over the quiet hills",
  "a child drew a red house",
  "the river ran past the old mill",
  "my friend baked bread this morning",
];

// a causal-LM adaptor: the logits, and the labels whose next-token shift marks the positions KD compares
const adaptor = (b: any, o: any) => ({ logits: o.logits, labels: b.labels });

function kdTerms(dir: string): number[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).terms.unweighted_kd_loss as number);
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe("vocabularies and ULD on tiny GPT-2s (real worker)", () => {
  const suite = useRealWorker();
  const dir = (name: string) => join(suite.tmp.path, name);
  afterEach(() => vi.restoreAllMocks());

  let word: TokenizerHandle;
  let bpe: TokenizerHandle;
  // the tokenizers and every model of the suite, built in two Python processes
  beforeAll(async () => {
    await makeTrainedTokenizers({ [dir("tok-word")]: { kind: "word" }, [dir("tok-bpe")]: { kind: "bpe", vocabSize: 60 } }, TEXTS);
    word = await suite.worker.loadTokenizer(dir("tok-word"));
    bpe = await suite.worker.loadTokenizer(dir("tok-bpe"));
    const models: Record<string, TinyGpt2Options> = {
      "pad-teacher": { vocab: 64, layers: 2, seed: 1 }, // the word tokenizer, its head padded to 64
      "pad-student": { vocab: word.vocabSize, seed: 2 },
      "mix-teacher": { vocab: 64, layers: 2, seed: 1 },
      "mix-student": { vocab: 64, seed: 2 },
      "uld-teacher": { vocab: word.vocabSize, layers: 2, seed: 1, initRange: 0.3 },
      "uld-student": { vocab: bpe.vocabSize, seed: 2 },
      "same-teacher": { vocab: word.vocabSize, layers: 2, seed: 3, initRange: 0.3 },
      "same-student": { vocab: word.vocabSize, seed: 4, initRange: 0.1 },
    };
    await makeTinyGpt2s(Object.fromEntries(Object.entries(models).map(([name, o]) => [dir(name), o])));
  });

  const load = (name: string) => suite.worker.loadModel({ path: dir(name), task: "causal-lm" });
  async function encode(tok: TokenizerHandle, texts: readonly string[]): Promise<Record<string, Tensor>> {
    return withLabels(await tok.encode([...texts]));
  }

  /** Distils the padded student from these teachers (one: BasicDistiller, several: MultiTeacherDistiller), 4 steps. */
  async function trainPadded(name: string, teacherNames: string[]): Promise<number[]> {
    const teachers = await Promise.all(teacherNames.map(load));
    const student = await load("pad-student");
    const outputDir = dir(name);
    const common = {
      trainConfig: { outputDir, device: "cpu" },
      distillConfig: { kdLossType: "token_kl", temperature: 1 },
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    } as const;
    const distiller =
      teachers.length === 1 ? new BasicDistiller({ ...common, teacher: teachers[0]! }) : new MultiTeacherDistiller({ ...common, teachers });
    await distiller.train({
      optimizer: { lr: 1e-2 },
      data: [await encode(word, TEXTS.slice(0, 4)), await encode(word, TEXTS.slice(4))],
      numEpochs: 2,
      tokenizers: { teacher: word, student: word },
    });
    return kdTerms(outputDir);
  }

  it("padded vocabularies are cut to the shared prefix, said once in the log, and train", async () => {
    expect(word.vocabSize).toBeLessThan(64);
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const kd = await trainPadded("pad-run", ["pad-teacher"]);
    const lines = warn.mock.calls.map((c) => String(c[0])).filter((l) => l.includes("vocabularies"));
    expect(lines).toEqual([
      `textbrewer-ts: vocabularies: the teacher's logits have 64 entries and the student's ${word.vocabSize}; the tokenizers ` +
        `are the same (${word.vocabSize} tokens), so KD compares the shared first ${word.vocabSize} entries`,
    ]);
    expect(kd).toHaveLength(4);
    for (const v of kd) expect(Number.isFinite(v) && v > 0).toBe(true);
  });

  it("MultiTeacherDistiller averages teachers of one tokenizer with differently padded heads over the shared prefix", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const kd = await trainPadded("pad-multi-run", ["pad-teacher", "same-teacher"]);
    expect(kd).toHaveLength(4);
    for (const v of kd) expect(Number.isFinite(v) && v > 0).toBe(true);
  });

  it("CausalLMDistiller cuts padded vocabularies to the shared prefix too, said once in the log", async () => {
    const teacher = await load("pad-teacher");
    const student = await load("pad-student");
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const outputDir = dir("pad-causal-run");
    await new CausalLMDistiller({
      trainConfig: { outputDir, device: "cpu" },
      distillConfig: { kdLossType: "token_kl", temperature: 1 },
      teacher,
      student,
    }).train({
      optimizer: { lr: 1e-2 },
      data: [await encode(word, TEXTS.slice(0, 4)), await encode(word, TEXTS.slice(4))],
      numEpochs: 2,
    });
    const lines = warn.mock.calls.map((c) => String(c[0])).filter((l) => l.includes("vocabularies"));
    expect(lines).toEqual([
      `textbrewer-ts: vocabularies: the teacher's logits have 64 entries and the student's ${word.vocabSize}; the sizes ` +
        `differ only by padding (name the tokenizers to check their tokens), so KD compares the shared first ${word.vocabSize} entries`,
    ]);
    const kd = readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).terms.unweighted_causal_lm_kd_loss as number);
    expect(kd).toHaveLength(4);
    for (const v of kd) expect(Number.isFinite(v) && v > 0).toBe(true);
  });

  it("different tokenizers are refused with the sizes, the first differing tokens and the fix", async () => {
    const teacher = await load("mix-teacher");
    const student = await load("mix-student");
    const run = new BasicDistiller({
      trainConfig: { outputDir: dir("mix-run"), device: "cpu" },
      distillConfig: { kdLossType: "kl", temperature: 1 },
      teacher,
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    }).train({
      optimizer: { lr: 1e-2 },
      data: [{ teacher: await encode(word, TEXTS), student: await encode(bpe, TEXTS) }],
      numEpochs: 1,
      tokenizers: { teacher: word, student: bpe },
    });
    const error = await run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkerError);
    const message = (error as WorkerError).pythonMessage;
    expect((error as WorkerError).pythonType).toBe("VocabularyMismatchError");
    expect(message).toContain(`the teacher's tokenizer has ${word.vocabSize} tokens and the student's ${bpe.vocabSize}`);
    expect(message).toMatch(/first differences: id \d+: teacher '[^']+', student '[^']+'/);
    expect(message).toContain("kdLossType 'uld'");
    expect(message).toContain("split batches { teacher, student }");
  });

  it("ULD across two tokenizers trains on split batches with finite, decreasing loss", async () => {
    expect(bpe.vocabSize).not.toBe(word.vocabSize);
    const teacher = await load("uld-teacher");
    const student = await load("uld-student");
    const split = async (texts: readonly string[]) => ({ teacher: await encode(word, texts), student: await encode(bpe, texts) });
    const data = [await split(TEXTS.slice(0, 4)), await split(TEXTS.slice(4))];
    // the two tokenizations differ in length: positions are paired by continuation position, truncated to the shorter
    expect(data[0]!.teacher.input_ids!.shape[1]).not.toBe(data[0]!.student.input_ids!.shape[1]);
    const outputDir = dir("uld-run");
    await new BasicDistiller({
      trainConfig: { outputDir, device: "cpu", seed: 7 },
      distillConfig: { kdLossType: "uld", temperature: 1 },
      teacher,
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    }).train({ optimizer: { lr: 3e-2 }, data, numEpochs: 10, tokenizers: { teacher: word, student: bpe } });
    const kd = kdTerms(outputDir);
    expect(kd).toHaveLength(20);
    for (const v of kd) expect(Number.isFinite(v)).toBe(true);
    expect(mean(kd.slice(-4))).toBeLessThan(0.7 * mean(kd.slice(0, 4)));
  });

  it("ULD with a teacher cache is refused before any step", async () => {
    const teacher = await load("same-teacher");
    const student = await load("same-student");
    const run = new BasicDistiller({
      trainConfig: { outputDir: dir("uld-cache"), device: "cpu" },
      distillConfig: { kdLossType: "uld" },
      teacher,
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    }).train({ optimizer: { lr: 1e-3 }, data: [await encode(word, TEXTS)], numEpochs: 1, teacherCache: {} });
    await expect(run).rejects.toThrow(/kdLossType: 'uld' pairs the teacher's positions .* train ULD without teacherCache/);
  });

  it("with one tokenizer, the ULD term equals its float64 reference", async () => {
    const teacher = await load("same-teacher");
    const student = await load("same-student");
    const b = await encode(word, TEXTS.slice(0, 5));
    const outputDir = dir("same-run");
    await new BasicDistiller({
      trainConfig: { outputDir, device: "cpu" },
      distillConfig: { kdLossType: "uld", temperature: 2 },
      teacher,
      student,
      adaptorT: adaptor,
      adaptorS: adaptor,
    }).train({ optimizer: { lr: 1e-3 }, data: [b], numEpochs: 1 });
    const ref = Number(
      await runReference("uld_kd.py", [
        JSON.stringify({ t: dir("same-teacher"), s: dir("same-student"), batch: batchJson(b), temperature: 2 }),
      ]),
    );
    expect(ref).toBeGreaterThan(0.01);
    expect(kdTerms(outputDir)[0]).toBeCloseTo(ref, 6);
  });
});
