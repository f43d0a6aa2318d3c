"""A masked L1 match between student hidden state 1 and teacher hidden state 2, in float64.

Independent of the worker: the models run in plain transformers (the student in train mode, as in the step, with
dropout 0 in the test's models) and the loss is written from its definition: the mean of |S - T| over the positions
the attention mask keeps and the hidden width.

Called as ``python masked_l1_match.py JOB_JSON`` where the job holds ``t`` and ``s`` (the teacher and student folders),
``ids`` and ``mask`` (nested lists). Prints the loss as one number.
"""

import json
import sys

import torch
from transformers import AutoModelForSequenceClassification as M


def main(job: dict) -> float:
    t = M.from_pretrained(job["t"], local_files_only=True).eval()
    s = M.from_pretrained(job["s"], local_files_only=True).train()
    ids, mask = torch.tensor(job["ids"]), torch.tensor(job["mask"])
    with torch.no_grad():
        hs = s(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[1].double()
        ht = t(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[2].double()
    keep = mask.double().unsqueeze(-1)
    return float(((hs - ht).abs() * keep).sum() / (keep.sum() * hs.shape[-1]))


if __name__ == "__main__":
    print(main(json.loads(sys.argv[1])))
