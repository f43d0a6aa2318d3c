import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADAPTOR_KEYS,
  DistillationConfig,
  GeneralDistiller,
  kdLossNames,
  matchLossNames,
  registerLoss,
  Tensor,
  Worker,
} from "../src/index.js";
import { LOSS_CATALOGUE_PATH, lossInfo } from "../src/losses/catalogue.js";
import { makeTinyBert, runPython, tempDir } from "./helpers/fixtures.js";

describe("loss catalogue", () => {
  it("TypeScript accepts exactly the losses (with their layer forms) and adaptor keys the worker implements", async () => {
    const worker = JSON.parse(
      await runPython(`
import json
from textbrewer_worker.adaptor import ADAPTOR_KEYS
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
  const tmp = tempDir();
  let worker: Worker;
  let teacherDir: string;
  let studentDir: string;
  let lossFile: string;

  beforeAll(async () => {
    [teacherDir, studentDir] = await Promise.all([
      makeTinyBert(join(tmp.path, "teacher"), { layers: 2, seed: 1, dropout: 0 }),
      makeTinyBert(join(tmp.path, "student"), { layers: 1, seed: 2, dropout: 0 }),
    ]);
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
    worker = await Worker.start({ device: "cpu" });
  });
  afterAll(async () => {
    await worker?.close();
    tmp.cleanup();
  });

  it("is accepted by the config after registerLoss, with no TypeScript edit, and trains (float64 reference)", async () => {
    const match = { layerT: 2, layerS: 1, feature: "hidden", loss: "masked_l1", weight: 1 } as const;
    expect(() => DistillationConfig.parse({ intermediateMatches: [match] })).toThrow(/unknown match loss.*registerLoss/s);
    registerLoss({ name: "masked_l1", kind: "match", python: `${lossFile}:masked_l1` });
    expect(DistillationConfig.parse({ intermediateMatches: [match] }).intermediateMatches[0]!.loss).toBe("masked_l1");

    const t = await worker.loadModel({ path: teacherDir, task: "sequence-classification" });
    const s = await worker.loadModel({ path: studentDir, task: "sequence-classification" });
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
      await runPython(
        `
import json, sys, torch
from transformers import AutoModelForSequenceClassification as M
d = json.loads(sys.argv[1])
t = M.from_pretrained(d["t"], local_files_only=True).eval(); s = M.from_pretrained(d["s"], local_files_only=True).train()
ids, mask = torch.tensor(d["ids"]), torch.tensor(d["mask"])
with torch.no_grad():
    hs = s(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[1].double()
    ht = t(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[2].double()
keep = mask.double().unsqueeze(-1)
print(float(((hs - ht).abs() * keep).sum() / (keep.sum() * hs.shape[-1])))
`,
        [
          JSON.stringify({
            t: teacherDir,
            s: studentDir,
            ids: [
              [5, 6, 7, 8, 9],
              [10, 11, 12, 0, 0],
            ],
            mask: [
              [1, 1, 1, 1, 1],
              [1, 1, 1, 0, 0],
            ],
          }),
        ],
      ),
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
