"""An independent plain-PyTorch training loop: the reference of the training-loop tests (test/training.test.ts).

Runs the steps the way a user would write them by hand (no textbrewer_worker import): AdamW with a no-decay group
(biases and LayerNorm weights), KD cross-entropy at a temperature against a teacher's logits plus the hard-label
loss (or the hard-label loss alone without a teacher), gradient accumulation, gradient clipping. With "num_steps" it
cycles the batches until that many optimizer steps are taken, counting micro-batches over the cycled data as
TextBrewer does (``enumerate(cycle(dataloader))``).

Called as ``python training_loop.py JOB_JSON_FILE WEIGHTS_OUT TERMS_OUT``: the job holds the model folders
(``student``, optional ``teacher``), ``batches`` (nested lists), ``lr``, ``weight_decay`` and optionally ``seed``,
``gas``, ``temperature``, ``kd_weight``, ``hard_weight``, ``max_grad_norm``, ``num_steps``. Writes the final student
state dict to WEIGHTS_OUT (safetensors) and the first micro-batch's loss terms to TERMS_OUT (JSON).
"""

import itertools
import json
import sys
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoModelForSequenceClassification


def main(job_path: str, weights_path: str, terms_path: str) -> None:
    with open(job_path) as f:
        job: dict[str, Any] = json.load(f)
    torch.manual_seed(job.get("seed", 0))
    student = AutoModelForSequenceClassification.from_pretrained(job["student"], local_files_only=True)
    teacher = (
        AutoModelForSequenceClassification.from_pretrained(job["teacher"], local_files_only=True)
        if job.get("teacher")
        else None
    )
    student.train()
    if teacher is not None:
        teacher.eval()

    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in student.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm.weight" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": job["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=job["lr"],
    )
    gas = job.get("gas", 1)
    T = job.get("temperature", 1.0)
    first_terms: dict[str, float] | None = None
    steps = 0
    # steps mode ("num_steps"): TextBrewer's enumerate(cycle(dataloader)), micro-batches counted over the cycled data
    batches = itertools.cycle(job["batches"]) if job.get("num_steps") else job["batches"]
    for micro, batch_json in enumerate(batches, start=1):
        batch = {k: torch.tensor(v, dtype=torch.int64) for k, v in batch_json.items()}
        out = student(**batch)
        terms = {"hard": out.loss}
        total = 0.0
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(**batch).logits
            p_t = F.softmax(t_logits / T, dim=-1)
            kd = -(p_t * F.log_softmax(out.logits / T, dim=-1)).sum(-1).mean()
            terms["kd"] = kd
            total = job["kd_weight"] * kd + job["hard_weight"] * out.loss
        else:
            total = out.loss
        if first_terms is None:
            first_terms = {k: float(v) for k, v in terms.items()} | {"total": float(total)}
        (total / gas).backward()
        if micro % gas == 0:
            if job.get("max_grad_norm", -1) > 0:
                torch.nn.utils.clip_grad_norm_(student.parameters(), job["max_grad_norm"])
            opt.step()
            opt.zero_grad()
            steps += 1
            if steps == job.get("num_steps"):
                break

    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, weights_path)
    with open(terms_path, "w") as f:
        json.dump(first_terms, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
