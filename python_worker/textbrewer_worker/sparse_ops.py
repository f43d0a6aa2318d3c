"""Worker op: the fidelity report of sparse teacher targets on a sample batch, before a cache is filled."""

from __future__ import annotations

from typing import Any, cast

import torch

from .sparse_teacher_forms import sparse_fidelity
from .training.train_ops import teacher_logits
from .wire.ops import WorkerState, op
from .wire.ops_types import TeacherLogitsArgs, TeacherSparseFidelityArgs, TeacherSparseFidelityResult


@op("teacher_sparse_fidelity")
def teacher_sparse_fidelity(state: WorkerState, args: TeacherSparseFidelityArgs) -> TeacherSparseFidelityResult:
    """One report per logits tensor the teacher adaptor returns (see sparse_teacher_forms.sparse_fidelity)."""
    forward = TeacherLogitsArgs(
        teachers=args["teachers"],
        adaptors=args["adaptors"],
        batch=args["batch"],
        forwardArgs=args["forwardArgs"],
        topK=None,
        samples=None,
        temperature=args["temperature"],
        features=None,
    )
    logits = teacher_logits(state, forward)["logits"]
    reports: list[dict[str, Any]] = []
    for tensor in logits if isinstance(logits, list) else [logits]:
        assert isinstance(tensor, torch.Tensor)
        reports.append(sparse_fidelity(tensor, args["temperature"], args["ks"], args["samples"], args["seed"]))
    return cast(TeacherSparseFidelityResult, reports)
