"""The KD term for list logits under one logits_mask, in float64: the mask applies to every item, and the items add up.

Independent of the worker. The two items are a token-classification model's logits and its last hidden state (two
3-D tensors of different widths, as [start, end] logits would be); each keeps the positions where the attention mask
is not 0, and each adds the cross-entropy against the softened teacher at T = 2 (TextBrewer's 'ce').

Called as ``python list_logits_kd.py JOB_JSON`` where the job holds ``t`` and ``s`` (token-classification folders)
and ``batch`` (input_ids, attention_mask as nested lists). Prints the KD term as one number.
"""

import json
import sys

import torch
from transformers import AutoModelForTokenClassification as M


def main(job: dict) -> float:
    t = M.from_pretrained(job["t"], local_files_only=True).eval()
    s = M.from_pretrained(job["s"], local_files_only=True).train()
    b = {k: torch.tensor(v) for k, v in job["batch"].items()}
    with torch.no_grad():
        ot, os_ = t(**b, output_hidden_states=True), s(**b, output_hidden_states=True)
    keep = b["attention_mask"] != 0
    total = 0.0
    for ls, lt in ((os_.logits, ot.logits), (os_.hidden_states[-1], ot.hidden_states[-1])):
        ls, lt = ls[keep].double() / 2, lt[keep].double() / 2
        total += float(-(torch.softmax(lt, -1) * torch.log_softmax(ls, -1)).sum(-1).mean())
    return total


if __name__ == "__main__":
    print(main(json.loads(sys.argv[1])))
