import { describe, expect, it } from "vitest";
import { NO_DECAY_GROUP } from "../src/index.js";
import { runPython } from "./helpers/fixtures.js";

describe("NO_DECAY_GROUP", () => {
  it("matches every parameter name containing 'bias' and the LayerNorm weights, nothing else", () => {
    const re = new RegExp(NO_DECAY_GROUP.pattern);
    const noDecay = [
      "bias",
      "classifier.bias",
      "gru.bias_ih_l0",
      "lstm.bias_hh_l1_reverse",
      "attn.in_proj_bias",
      "encoder.LayerNorm.weight",
      "ln.layer_norm.weight",
    ];
    const decay = ["classifier.weight", "gru.weight_ih_l0", "attn.in_proj_weight", "embeddings.word_embeddings.weight", "norm.weight"];
    for (const name of noDecay) expect(re.test(name), name).toBe(true);
    for (const name of decay) expect(re.test(name), name).toBe(false);
    expect(NO_DECAY_GROUP.weightDecay).toBe(0);
  });

  it("the worker puts a GRU's biases in the no-decay group (its own parameter grouping, torch's names)", async () => {
    const out = await runPython(
      `
import json, sys, torch
from textbrewer_worker.training.optim import parameter_groups

class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.gru = torch.nn.GRU(4, 4, batch_first=True)
        self.LayerNorm = torch.nn.LayerNorm(4)
        self.classifier = torch.nn.Linear(4, 2)

model = Tiny()
names = {id(p): n for n, p in model.named_parameters()}
groups = parameter_groups(model, [{"pattern": sys.argv[1], "weightDecay": 0.0}])
print(json.dumps([{"names": sorted(names[id(p)] for p in g["params"]), "wd": g.get("weight_decay")} for g in groups]))
`,
      [NO_DECAY_GROUP.pattern],
    );
    const [decay, noDecay] = JSON.parse(out) as Array<{ names: string[]; wd: number | undefined }>;
    expect(noDecay).toEqual({
      names: ["LayerNorm.bias", "LayerNorm.weight", "classifier.bias", "gru.bias_hh_l0", "gru.bias_ih_l0"],
      wd: 0,
    });
    expect(decay!.names).toEqual(["classifier.weight", "embed.weight", "gru.weight_hh_l0", "gru.weight_ih_l0"]);
  });
});
