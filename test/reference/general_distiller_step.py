"""One GeneralDistiller step written by hand in plain PyTorch: KD + hidden_mse through a projection + mmd + hard labels.

Independent of the worker (no textbrewer_worker import): it rebuilds the step from the formulas, takes one AdamW step
and compares the resulting weights with the checkpoint the distiller wrote.

Called as ``python general_distiller_step.py JOB_JSON`` where the job holds ``t`` and ``s`` (the teacher and student
folders), ``ckpt`` (the distiller's checkpoint folder after that step) and ``batch`` (input_ids, attention_mask,
labels as nested lists). The step uses seed 11, T = 3, hidden_mse S2↔T4 (weight 2) through a Linear(32, 48)
projection initialised as TextBrewer's, mmd S[0, 2]↔T[0, 4] (weight 1), hard-label weight 0.5 and lr 1e-3. Prints
JSON: the loss terms (kd, hmse, mmd, hard, total) and the largest weight differences (diff: student, pdiff:
projection).
"""

import json
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification as M


def gram(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b.transpose(1, 2) / a.shape[-1]


def main(job: dict) -> dict[str, float]:
    torch.manual_seed(11)
    proj = torch.nn.Linear(32, 48)
    torch.nn.init.normal_(proj.weight, 0, 0.02)
    torch.nn.init.zeros_(proj.bias)
    t = M.from_pretrained(job["t"], local_files_only=True).eval()
    s = M.from_pretrained(job["s"], local_files_only=True).train()
    b = {k: torch.tensor(v) for k, v in job["batch"].items()}
    m = b["attention_mask"].float()
    with torch.no_grad():
        ot = t(**b, output_hidden_states=True)
    os_ = s(**b, output_hidden_states=True)
    T = 3.0
    kd = -(F.softmax(ot.logits / T, -1) * F.log_softmax(os_.logits / T, -1)).sum(-1).mean()
    hs = proj(os_.hidden_states[2])
    ht = ot.hidden_states[4]
    hmse = (((hs - ht) ** 2) * m.unsqueeze(-1)).sum() / (m.sum() * ht.shape[-1])
    gs = gram(os_.hidden_states[0], os_.hidden_states[2])
    gt = gram(ot.hidden_states[0], ot.hidden_states[4])
    mm = m.unsqueeze(2) * m.unsqueeze(1)
    mmd = (((gs - gt) ** 2) * mm).sum() / (m.sum(1) ** 2).sum()
    total = kd + 2 * hmse + mmd + 0.5 * os_.loss
    opt = torch.optim.AdamW(list(s.parameters()) + list(proj.parameters()), lr=1e-3)
    total.backward()
    opt.step()
    ours = load_file(job["ckpt"] + "/model/model.safetensors")
    pj = load_file(job["ckpt"] + "/projections.safetensors")
    diff = max(float((ours[k] - v).abs().max()) for k, v in s.state_dict().items() if k in ours)
    pdiff = max(float((pj["0.weight"] - proj.weight).abs().max()), float((pj["0.bias"] - proj.bias).abs().max()))
    return {
        "kd": kd.item(),
        "hmse": hmse.item(),
        "mmd": mmd.item(),
        "hard": os_.loss.item(),
        "total": total.item(),
        "diff": diff,
        "pdiff": pdiff,
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
