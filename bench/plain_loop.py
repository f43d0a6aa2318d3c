"""A plain PyTorch distillation loop, the baseline of `npm run bench` (bench/distill.ts).

Written the way a user would write it by hand; it imports nothing from textbrewer_worker.

    python bench/plain_loop.py JOB_JSON          (a path to a JSON file, or the JSON text itself)

Job fields: teacher, student (Hugging Face folders), batchSize, seqLen, warmup, steps, workload ("kd" | "hidden"),
seed (batches and dropout), lr (AdamW), temperature. Prints one JSON object on stdout:
{stepTimes: [s, ...] (the measured steps after warm-up), cpuTimes (process CPU seconds of the same steps), losses: [...] (every step), threads, torch, checksum, ...}.

Workloads (the same objective as textbrewer-ts BasicDistiller / GeneralDistiller with TextBrewer's defaults):
  kd      teacher eval forward under no_grad, student train forward, KD cross-entropy at temperature T
          (-sum softmax(t/T) * log_softmax(s/T), mean over rows), AdamW step.
  hidden  kd plus hidden_mse between student hidden state i and teacher hidden state 2i (i = 0, 1, 2), masked as
          TextBrewer's hidden_mse: sum((S-T)^2 * m) / (sum(m) * D). Both models run with output_hidden_states.

Batches: input_ids int64 in [1, vocab), attention_mask all ones, labels in [0, num_labels), from a 32-bit integer
hash of (seed, batch index, row, column); bench/distill.ts builds the very same tensors in TypeScript.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification

M32 = 0xFFFFFFFF


def hash32(x):
    """lowbias32 (Chris Wellons), on a Python int or a uint32 numpy array; identical to hash32 in distill.ts."""
    if isinstance(x, np.ndarray):
        x = x.astype(np.uint32)
        x ^= x >> np.uint32(16)
        x *= np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x846CA68B)
        x ^= x >> np.uint32(16)
        return x
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def make_batch(seed: int, index: int, batch_size: int, seq_len: int, vocab: int, num_labels: int) -> dict:
    """Batch `index` of the stream `seed`: key(seed, b, i, j) = h(h(h(h(seed) ^ b) ^ i) ^ j)."""
    hb = hash32(hash32(seed) ^ index)
    rows = hash32(np.uint32(hb) ^ np.arange(batch_size, dtype=np.uint32))  # h(h(h(seed) ^ b) ^ i)
    keys = hash32(rows[:, None] ^ np.arange(seq_len, dtype=np.uint32)[None, :])
    ids = 1 + (keys % np.uint32(vocab - 1)).astype(np.int64)
    labels = (hash32(rows ^ np.uint32(M32)) % np.uint32(num_labels)).astype(np.int64)
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.int64),
        "labels": torch.from_numpy(labels),
    }


def kd_ce(logits_S: torch.Tensor, logits_T: torch.Tensor, T: float) -> torch.Tensor:
    return -(F.softmax(logits_T / T, dim=-1) * F.log_softmax(logits_S / T, dim=-1)).sum(-1).mean()


def hidden_mse(S: torch.Tensor, T: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(S.dtype)
    return ((S - T).pow(2) * m.unsqueeze(-1)).sum() / (m.sum() * S.shape[-1])


class PlainRun:
    """The models, optimizer and batches of one run; `step(n)` trains on batch n."""

    def __init__(self, job: dict) -> None:
        t_start = time.perf_counter()
        self.workload = job["workload"]
        if self.workload not in ("kd", "hidden"):
            raise SystemExit(f"workload: expected 'kd' or 'hidden', got {self.workload!r}")
        batch_size, seq_len = int(job["batchSize"]), int(job["seqLen"])
        self.warmup, steps = int(job.get("warmup", 3)), int(job["steps"])
        self.seed = int(job.get("seed", 0))
        self.T = float(job.get("temperature", 4.0))
        self.teacher = AutoModelForSequenceClassification.from_pretrained(job["teacher"], local_files_only=True)
        self.student = AutoModelForSequenceClassification.from_pretrained(job["student"], local_files_only=True)
        self.teacher.eval()
        self.student.train()
        self.optimizer = torch.optim.AdamW(self.student.parameters(), lr=float(job.get("lr", 1e-4)))
        vocab, num_labels = self.student.config.vocab_size, self.student.config.num_labels
        self.batches = [
            make_batch(self.seed, b, batch_size, seq_len, vocab, num_labels) for b in range(self.warmup + steps)
        ]
        self.hidden = self.workload == "hidden"
        self.layer_pairs = [(0, 0), (1, 2), (2, 4)]  # (student layer, teacher layer) of the hidden states
        self.load_seconds = time.perf_counter() - t_start

    def step(self, n: int) -> tuple[float, float, float]:
        """(wall seconds, process CPU seconds, loss) of one training step on batch n."""
        batch = self.batches[n]
        c0 = time.process_time()
        t0 = time.perf_counter()
        with torch.no_grad():
            out_T = self.teacher(**batch, output_hidden_states=self.hidden)
        out_S = self.student(**batch, output_hidden_states=self.hidden)
        loss = kd_ce(out_S.logits, out_T.logits, self.T)
        if self.hidden:
            for s, t in self.layer_pairs:
                loss = loss + hidden_mse(out_S.hidden_states[s], out_T.hidden_states[t], batch["attention_mask"])
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = loss.item()  # what a hand-written loop logs
        return time.perf_counter() - t0, time.process_time() - c0, value

    def checksum(self) -> dict:
        return {
            "ids": int(sum(int(b["input_ids"].sum()) for b in self.batches)),
            "labels": int(sum(int(b["labels"].sum()) for b in self.batches)),
            "first": self.batches[0]["input_ids"][0, :4].tolist(),
        }


def run_job(**job) -> dict:
    """One whole run, its steps back to back."""
    t_start = time.perf_counter()
    c_start = time.process_time()
    run = PlainRun(job)
    torch.manual_seed(run.seed)  # dropout masks: textbrewer-ts seeds the same way (TrainingConfig.seed)
    step_times: list[float] = []
    cpu_times: list[float] = []
    losses: list[float] = []
    for n in range(len(run.batches)):
        dt, dc, value = run.step(n)
        losses.append(value)
        if n >= run.warmup:
            step_times.append(dt)
            cpu_times.append(dc)
    return {
        "workload": run.workload,
        "warmup": run.warmup,
        "stepTimes": step_times,
        "cpuTimes": cpu_times,
        "losses": losses,
        "threads": torch.get_num_threads(),
        "interopThreads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
        "checksum": run.checksum(),
        "loadSeconds": run.load_seconds,
        "wallSeconds": time.perf_counter() - t_start,
        "processCpuSeconds": time.process_time() - c_start,
        "pid": os.getpid(),
    }


# Step by step, inside a textbrewer-ts worker (Worker.runPython), so that the plain loop's steps can alternate
# with the worker's own in one process: open_run, then step(index) per step, then close_run.
_OPEN: dict[str, PlainRun] = {}


def open_run(name: str, **job) -> dict:
    _OPEN[name] = run = PlainRun(job)
    return {"threads": torch.get_num_threads(), "torch": torch.__version__, "checksum": run.checksum()}


def step(name: str, index: int) -> dict:
    dt, dc, value = _OPEN[name].step(index)
    return {"seconds": dt, "cpuSeconds": dc, "loss": value}


def close_run(name: str) -> None:
    _OPEN.pop(name, None)


def main() -> None:
    arg = sys.argv[1]
    if arg.lstrip().startswith("{"):
        job = json.loads(arg)
    else:
        with open(arg) as f:
            job = json.load(f)
    print(json.dumps(run_job(**job)))


if __name__ == "__main__":
    main()
