"""The KD loss of one MultiTeacherDistiller step at T = 0.01, from the mean of two teachers' logits and from the first.

Independent of the worker: the teachers and the student (before its step) run in plain transformers under no_grad.

Called as ``python multi_teacher_kd.py JOB_JSON`` where the job holds ``teachers`` (two folders), ``s`` (the student
folder) and ``batch`` (input_ids, attention_mask, labels as nested lists). Prints JSON ``{"mean": kd against the mean
of the teachers' logits, "first": kd against the first teacher's alone}``.
"""

import json
import sys

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification as M


def main(job: dict) -> dict[str, float]:
    b = {k: torch.tensor(v) for k, v in job["batch"].items()}
    with torch.no_grad():
        ls = [M.from_pretrained(p, local_files_only=True).eval()(**b).logits for p in job["teachers"]]
        s = M.from_pretrained(job["s"], local_files_only=True).eval()(**b).logits
    mean = (ls[0] + ls[1]) / 2

    def kd(t: torch.Tensor) -> float:
        return float(-(F.softmax(t / 0.01, -1) * F.log_softmax(s / 0.01, -1)).sum(-1).mean())

    return {"mean": kd(mean), "first": kd(ls[0])}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
