/** examples/llm-distill.ts at a toy size: tokenizer, teacher, the three students and their figures, in seconds. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEMO_SIZES, runLlmDistill } from "../examples/llm-distill.js";
import { readTeacherMarker } from "../examples/shared/teacher-marker.js";
import { useTempDir } from "./helpers/fixtures.js";

const LINES = [
  "To be, or not to be, that is the question:",
  "Whether 'tis nobler in the mind to suffer",
  "The slings and arrows of outrageous fortune,",
  "Or to take arms against a sea of troubles",
  "And by opposing end them. To die: to sleep;",
  "No more; and by a sleep to say we end",
];

describe("examples/llm-distill.ts (toy size)", () => {
  const tmp = useTempDir("llm-demo-");

  it("trains the tokenizer and teacher, runs the three students and reports finite figures; the teacher is kept", async () => {
    const textPath = join(tmp.path, "input.txt");
    const text = Array.from({ length: 120 }, (_, i) => `${LINES[i % LINES.length]} ${LINES[(i * 5 + 1) % LINES.length]}\n`).join("");
    writeFileSync(textPath, text);
    const lines: string[] = [];
    const options = {
      ...DEMO_SIZES,
      textPath,
      runDir: join(tmp.path, "run"),
      vocab: 300,
      seqLen: 24,
      batchSize: 4,
      teacher: { layers: 2, hidden: 32, heads: 2, steps: 6, lr: 3e-3 },
      student: { layers: 1, hidden: 16, heads: 2 },
      steps: 4,
      samples: 8,
      promptLength: 6,
      evalBatches: 2,
      sampleTokens: 5,
      log: (l: string) => lines.push(l),
    };
    const r = await runLlmDistill(options);
    expect(r.models.map((m) => m.name)).toEqual([
      "teacher",
      "(a) student alone",
      "(b) offline KD, 8 teacher draws per token",
      "(c) on-policy GKD, λ = 0.5",
    ]);
    for (const m of r.models) {
      expect(Number.isFinite(m.perplexity) && m.perplexity > 1).toBe(true);
      expect(m.sample.length).toBeGreaterThan(0);
    }
    expect(r.models[1]!.parameters).toBe(r.models[3]!.parameters);
    expect(r.models[0]!.parameters).toBeGreaterThan(r.models[1]!.parameters);
    // 8 draws of int32 ids and float32 log-probabilities: at least 64 bytes per token, well under the 300 dense logits' 1200
    expect(r.cacheBytesPerToken).toBeGreaterThan(64);
    expect(r.cacheBytesPerToken).toBeLessThan(1200);
    expect(JSON.parse(readFileSync(join(tmp.path, "run", "summary.json"), "utf8")).models).toHaveLength(4);
    expect(lines.some((l) => l.startsWith("training the teacher"))).toBe(true);
    // the next run with the same settings finds the teacher by its marker (the demo then logs "reusing the teacher")
    expect(readTeacherMarker(join(tmp.path, "run", "teacher"))?.checkpoint).toBe(join("run", "gs6"));
  });
});
