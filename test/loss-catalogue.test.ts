import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ADAPTOR_KEYS } from "../src/adaptor/index.js";
import { kdLossNames, matchLossNames } from "../src/config/index.js";
import { DistillationConfig, GeneralDistiller, registerLoss, Tensor } from "../src/index.js";
import { LOSS_CATALOGUE_PATH, lossInfo } from "../src/losses/catalogue.js";
import { runPython, runReference, useRealWorker } from "./helpers/fixtures.js";

describe("loss catalogue", () => {
  it("TypeScript accepts exactly the losses (with their layer forms) and adaptor keys the worker implements", async () => {
    const worker = JSON.parse(
      await runPython(`
import json
from textbrewer_worker.training.adaptor import ADAPTOR_KEYS
from textbrewer_worker.loss_catalogue import CATALOGUE_PATH, render
from textbrewer_worker.losses import KD_LOSSES, MATCH_LOSSES, loss_info
print(json.dumps({
    "kd": sorted(KD_LOSSES), "match": sorted(MATCH_LOSSES), "adaptorKeys": sorted(ADAPTOR_KEYS),
    "pairs": sorted(n for n in MATCH_LOSSES if loss_info("match", n).layers == "pair"),
    "current": CATALOGUE_PATH.read_text(encoding="utf-8") == render(),
}))
`),
    ) as { kd: string[]; match: string[]; adaptorKeys: string[]; pairs: string[]; current: boolean };
    expect(worker.current, "losses.json is stale: run `python -m textbrewer_worker.loss_catalogue` in python_worker/").toBe(true);
    expect([...kdLossNames()].sort()).toEqual(worker.kd);
    expect([...matchLossNames()].sort()).toEqual(worker.match);
    expect(
      matchLossNames()
        .filter((n) => lossInfo("match", n)?.layers === "pair")
        .sort(),
    ).toEqual(worker.pairs);
    expect([...ADAPTOR_KEYS].sort()).toEqual(worker.adaptorKeys);
    expect(JSON.parse(readFileSync(LOSS_CATALOGUE_PATH, "utf8")).losses.length).toBe(worker.kd.length + worker.match.length);
  });
});

describe("a match loss defined in Python only (real worker)", () => {
  const suite = useRealWorker({
    models: { teacher: { layers: 2, seed: 1, dropout: 0 }, student: { layers: 1, seed: 2, dropout: 0 } },
  });
  const { tmp, models } = suite;
  let lossFile: string;

  beforeAll(() => {
    lossFile = join(tmp.path, "my_losses.py");
    writeFileSync(
      lossFile,
      `import torch
from textbrewer_worker.losses import loss


@loss("masked_l1", kind="match", layers="single", features=["hidden"])
def masked_l1(feat_S: torch.Tensor, feat_T: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |S - T| over the positions the mask keeps."""
    m = mask.to(feat_S.dtype).unsqueeze(-1)
    return ((feat_S - feat_T).abs() * m).sum() / (m.sum() * feat_S.shape[-1])
`,
    );
  });

  it("is accepted by the config after registerLoss, with no TypeScript edit, and trains (float64 reference)", async () => {
    const match = { layerT: 2, layerS: 1, feature: "hidden", loss: "masked_l1", weight: 1 } as const;
    expect(() => DistillationConfig.parse({ intermediateMatches: [match] })).toThrow(/unknown match loss.*registerLoss/s);
    registerLoss({ name: "masked_l1", kind: "match", python: `${lossFile}:masked_l1` });
    expect(DistillationConfig.parse({ intermediateMatches: [match] }).intermediateMatches[0]!.loss).toBe("masked_l1");

    const t = await suite.worker.loadModel({ path: models.teacher, task: "sequence-classification" });
    const s = await suite.worker.loadModel({ path: models.student, task: "sequence-classification" });
    const adaptor = (b: any, o: any) => ({ hidden: o.hidden_states, inputs_mask: b.attention_mask });
    const batch = {
      input_ids: Tensor.from(
        [
          [5n, 6n, 7n, 8n, 9n],
          [10n, 11n, 12n, 0n, 0n],
        ],
        "int64",
      ),
      attention_mask: Tensor.from(
        [
          [1n, 1n, 1n, 1n, 1n],
          [1n, 1n, 1n, 0n, 0n],
        ],
        "int64",
      ),
    };
    const distiller = (matches: object[], dir: string) =>
      new GeneralDistiller({
        trainConfig: { outputDir: join(tmp.path, dir), device: "cpu" },
        distillConfig: { intermediateMatches: matches as never },
        teacher: t,
        student: s,
        adaptorT: adaptor,
        adaptorS: adaptor,
      });
    await distiller([match], "run").train({ optimizer: { lr: 1e-3 }, data: [batch], numEpochs: 1 });
    const line = JSON.parse(
      readFileSync(join(tmp.path, "run", "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")[0]!,
    );
    const ref = Number(
      await runReference("masked_l1_match.py", [
        JSON.stringify({
          t: models.teacher,
          s: models.student,
          ids: [
            [5, 6, 7, 8, 9],
            [10, 11, 12, 0, 0],
          ],
          mask: [
            [1, 1, 1, 1, 1],
            [1, 1, 1, 0, 0],
          ],
        }),
      ]),
    );
    expect(line.terms.unweighted_hidden_masked_l1_1_2).toBeCloseTo(ref, 6);

    // the layer form it declares in Python is checked by the worker when training starts
    const pairs = distiller([{ ...match, layerT: [0, 2], layerS: [0, 1] }], "pairs").train({
      optimizer: { lr: 1e-3 },
      data: [batch],
      numEpochs: 1,
    });
    await expect(pairs).rejects.toThrow(/intermediateMatches\[0\]\.layerS: loss 'masked_l1' takes one layer index/);
    await Promise.all([t.dispose(), s.dispose()]);
  });
});
