"""Worker op: the fidelity report of sparse teacher targets on a sample batch, before a cache is filled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .ops import WorkerState, op
from .sparse_teacher_forms import sparse_fidelity
from .train_ops import teacher_logits


@dataclass(frozen=True)
class FidelityArgs:
    """teacher_logits' arguments (teachers, adaptors, batch, forwardArgs) plus what to measure."""

    temperature: float
    ks: list[int]
    samples: list[int]
    seed: int

    @staticmethod
    def read(args: dict[str, Any]) -> FidelityArgs:
        return FidelityArgs(
            float(args["temperature"]),
            [int(k) for k in args["ks"]],
            [int(n) for n in args["samples"]],
            int(args["seed"]),
        )


@op("teacher_sparse_fidelity")
def teacher_sparse_fidelity(state: WorkerState, args: dict[str, Any]) -> list[dict[str, Any]]:
    """One report per logits tensor the teacher adaptor returns (see sparse_teacher_forms.sparse_fidelity)."""
    spec = FidelityArgs.read(args)
    logits = teacher_logits(state, {**args, "topK": None})["logits"]
    reports = []
    for tensor in logits if isinstance(logits, list) else [logits]:
        assert isinstance(tensor, torch.Tensor)
        reports.append(sparse_fidelity(tensor, spec.temperature, spec.ks, spec.samples, spec.seed))
    return reports
