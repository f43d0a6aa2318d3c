/** suggestLayerMap: the selection rule on known matrices, the worker op on a tiny BERT, and `textbrewer suggest`. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { bestCut, selectLayers, suggestLayerMap } from "../src/layer-map/index.js";
import { makeWordTokenizer, useRealWorker } from "./helpers/fixtures.js";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = join(ROOT, "dist", "cli", "main.js");

/** CKA of a teacher whose layers 1..L fall into blocks: 0.95 within a block, 0.2 across (embeddings: its own block). */
function blocks(sizes: number[]): number[][] {
  const block = [0, ...sizes.flatMap((n, b) => new Array<number>(n).fill(b + 1))];
  return block.map((a, i) => block.map((b, j) => (i === j ? 1 : a === b ? 0.95 : 0.2)));
}

describe("the selection rule", () => {
  it("cuts the teacher where its representation changes and matches each group's last layer", () => {
    const s = selectLayers({ teacherCka: blocks([2, 3, 1]) }, 3);
    expect(s.groups).toEqual([
      [1, 2],
      [3, 5],
      [6, 6],
    ]);
    expect(s.pairs).toEqual([
      [0, 0],
      [1, 2],
      [2, 5],
      [3, 6],
    ]);
    expect(s.layerMap).toEqual([0, 2, 5]); // the group's first layer: same input as the group, and (block) same output
  });

  it("bestCut finds the optimum of every cut (checked by enumerating them)", () => {
    const rng = (i: number) => Math.abs(Math.sin(i * 12.9898) * 43758.5453) % 1;
    const L = 7;
    const m = Array.from({ length: L + 1 }, (_, i) => Array.from({ length: L + 1 }, (_, j) => (i === j ? 1 : rng(i * 31 + j))));
    const sim = (j: number, e: number) => m[j]![e]!;
    for (const k of [1, 2, 3, 5, 7]) {
      let best = Number.NEGATIVE_INFINITY;
      const visit = (start: number, left: number, acc: number): void => {
        if (left === 0) {
          if (start === L + 1) best = Math.max(best, acc);
          return;
        }
        for (let e = start; e <= L; e++) {
          let c = 0;
          for (let j = start; j <= e; j++) c += sim(j, e);
          visit(e + 1, left - 1, acc + c);
        }
      };
      visit(1, k, 0);
      const cut = bestCut(sim, L, k);
      expect(cut.score).toBeCloseTo(best, 12);
      expect(cut.ends).toHaveLength(k);
      expect(cut.ends.at(-1)).toBe(L);
    }
  });

  it("with a student, matches follow its CKA, increasing, the last on the last teacher layer", () => {
    const cross = [
      [1, 0.1, 0.1, 0.1, 0.1],
      [0.1, 0.2, 0.1, 0.9, 0.3],
      [0.1, 0.1, 0.2, 0.3, 0.5],
    ];
    const s = selectLayers({ teacherCka: blocks([1, 1, 1, 1]), crossCka: cross }, 2);
    expect(s.pairs).toEqual([
      [0, 0],
      [1, 3],
      [2, 4],
    ]);
  });

  it("refuses a student deeper than the teacher and a bad matrix, naming the field", () => {
    expect(() => selectLayers({ teacherCka: blocks([2, 2]) }, 5)).toThrow(/numLayers: 5 .* use an integer in 1\.\.4/);
    expect(() => selectLayers({ teacherCka: [[1, 0], [0]] }, 1)).toThrow(/teacherCka: expected a 2×2 matrix/);
    expect(() => selectLayers({ teacherCka: blocks([2]) }, 1, -1)).toThrow(/attentionWeight: -1/);
  });
});

describe("suggestLayerMap on a tiny BERT", () => {
  const suite = useRealWorker({ models: { teacher: { layers: 4, hidden: 32, vocab: 40, dropout: 0 } }, prefix: "tbts-layermap-" });
  const words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...Array.from({ length: 35 }, (_, i) => `w${i}`)];
  const sentences = Array.from({ length: 24 }, (_, i) =>
    Array.from({ length: 3 + (i % 6) }, (_, j) => `w${(i * 7 + j * 3) % 35}`).join(" "),
  );

  it("measures CKA and attention in the worker, and its layer map builds a student that createModel accepts", async () => {
    const worker = suite.worker;
    const tokenizer = await worker.loadTokenizer(await makeWordTokenizer(suite.models.teacher, words));
    const { token_type_ids: _t, ...enc } = await tokenizer.encode(sentences, { padding: "longest" });
    const teacher = await worker.loadModel({ path: suite.models.teacher });
    const s = await suggestLayerMap({ teacher, data: [enc], numLayers: 2 });
    expect(s.similarity.teacherCka).toHaveLength(5);
    expect(s.similarity.teacherCka.map((r, i) => r[i])).toEqual([1, 1, 1, 1, 1].map((v) => expect.closeTo(v, 9)));
    expect(s.similarity.teacherAttention).toHaveLength(4);
    expect(s.similarity.tokens).toBe(sentences.reduce((n, t) => n + t.split(" ").length + 2, 0));
    expect(s.layerMap).toHaveLength(2);
    expect(s.intermediateMatches[0]).toMatchObject({ layerS: 0, layerT: 0, feature: "hidden", loss: "hidden_mse" });
    expect(s.intermediateMatches.at(-1)).toMatchObject({ layerS: 2, layerT: 4 });
    const student = await worker.createModel({ config: { num_hidden_layers: 2 }, initFrom: teacher, layerMap: s.layerMap });
    expect(student.initReport).toMatchObject({ layerMap: s.layerMap });
    const again = await suggestLayerMap({ teacher, student, data: [enc], numLayers: 2 });
    expect(again.similarity.crossCka).toHaveLength(3);
    await expect(suggestLayerMap({ teacher, student, data: [enc], numLayers: 3 })).rejects.toThrow(
      /numLayers: 3 but the student has 2 layers/,
    );
  });

  it("textbrewer suggest prints the map and writes layer-similarity.json and a report with the heatmap", async () => {
    const data = join(suite.tmp.path, "sample.tsv");
    writeFileSync(data, sentences.map((t, i) => `${i % 2}\t${t}`).join("\n"));
    const out = join(suite.tmp.path, "suggest");
    const r = await execa(process.execPath, [BIN, "suggest", suite.models.teacher, data, "--layers", "2", "--out", out], {
      reject: false,
      timeout: 120_000,
    });
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^layerMap: \[\d, \d\]/m);
    expect(r.stdout).toMatch(/^matches: {2}hidden_mse S0↔T0, hidden_mse S1↔T\d, hidden_mse S2↔T4$/m);
    const json = JSON.parse(readFileSync(join(out, "layer-similarity.json"), "utf8"));
    expect(json.similarity.teacherCka).toHaveLength(5);
    const html = readFileSync(join(out, "report.html"), "utf8");
    expect(html).toContain('<section id="layer-similarity">');
    const base64 = /src="data:image\/svg\+xml;base64,([^"]+)"/.exec(html.slice(html.indexOf('id="layer-similarity"')))![1]!;
    const svg = Buffer.from(base64, "base64").toString("utf8");
    expect(svg.match(/class="cell"/g)).toHaveLength(25);
    const bad = await execa(process.execPath, [BIN, "suggest", suite.models.teacher, data, "--layers", "x"], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--layers 'x' is not a positive integer/);
  });
});
