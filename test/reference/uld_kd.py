"""The ULD KD term of one causal-LM batch, in float64, from the definition (Boizard et al., 2024).

Independent of the worker. Both GPT-2s read the same batch (one tokenizer). Position i counts when token i + 1 is a
target (labels[i + 1] != -100); at each such position the teacher's and the student's softened distributions
(softmax(logits / T)) are each sorted in decreasing order, the shorter padded with zeros, and the L1 distance of the
two vectors, times T², is averaged over the counted positions.

Called as ``python uld_kd.py JOB_JSON`` where the job holds ``t`` and ``s`` (causal-LM folders), ``batch``
(input_ids, attention_mask, labels as nested lists) and ``temperature``. Prints the KD term as one number.
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM as M


def main(job: dict) -> float:
    tau = float(job["temperature"])
    t = M.from_pretrained(job["t"], local_files_only=True).double().eval()
    s = M.from_pretrained(job["s"], local_files_only=True).double().eval()
    b = {k: torch.tensor(v) for k, v in job["batch"].items()}
    inputs = {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]}
    with torch.no_grad():
        lt, ls = t(**inputs).logits, s(**inputs).logits
    values = []
    for row in range(b["labels"].shape[0]):
        for i in range(b["labels"].shape[1] - 1):
            if int(b["labels"][row, i + 1]) == -100:
                continue
            p_t = sorted(torch.softmax(lt[row, i] / tau, -1).tolist(), reverse=True)
            p_s = sorted(torch.softmax(ls[row, i] / tau, -1).tolist(), reverse=True)
            width = max(len(p_t), len(p_s))
            p_t += [0.0] * (width - len(p_t))
            p_s += [0.0] * (width - len(p_s))
            values.append(sum(abs(a - c) for a, c in zip(p_s, p_t)) * tau * tau)
    return sum(values) / len(values)


if __name__ == "__main__":
    print(main(json.loads(sys.argv[1])))
