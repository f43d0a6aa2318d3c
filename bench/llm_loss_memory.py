"""One variant of the token-loss memory benchmark (bench/llm-loss.ts starts one process per variant).

argv[1]: JSON {"variant": "unchunked" | "chunked", "kind": ..., "rows": N, "vocab": V, "chunk": rows or null}.
Prints JSON: the peak resident memory the loss's forward + backward added above the inputs (logits of both models
and the student's .grad already allocated and touched), from getrusage's peak RSS, and the time. The backward's
fresh gradient of the logits (rows × V floats, accumulated into .grad) is part of the extra in both variants.
For the memory figure run it with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576: every large tensor is then
its own mapping, returned to the system when freed, so peak RSS follows the bytes alive rather than the heap's
high-water mark.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import torch

from textbrewer_worker.llm_losses import token_divergence_rows, token_kd_loss


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main() -> None:
    job = json.loads(sys.argv[1])
    torch.manual_seed(0)
    rows, vocab = int(job["rows"]), int(job["vocab"])
    logits_S = torch.randn(rows, vocab).requires_grad_()
    logits_T = torch.randn(rows, vocab)
    # the gradient of the logits exists in either variant (autograd allocates it): count it as an input
    logits_S.grad = torch.zeros_like(logits_S)
    baseline = rss_bytes()
    start = time.perf_counter()
    if job["variant"] == "unchunked":
        loss = (token_divergence_rows(job["kind"], logits_S / 2.0, logits_T / 2.0, 0.5) * 4.0).mean()
    else:
        loss = token_kd_loss(job["kind"], logits_S, logits_T, 2.0, beta=0.5, chunk_size=job["chunk"])
    loss.backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    out = {
        **job,
        "loss": loss.item(),
        "inputBytes": 3 * rows * vocab * 4,
        "gradientBytes": rows * vocab * 4,
        "peakExtraBytes": max(peak - baseline, 0),
        "seconds": round(seconds, 3),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
