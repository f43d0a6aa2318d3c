"""Checks a training plan on one batch before step 0, so a wrong layer index, a missing feature or a width
mismatch fails with the fix spelled out instead of deep inside a loss. Leaves RNG state and modes as they were.
The batch's masks are checked first (batch_check: shapes against input_ids, finite values); every step checks them
again."""

from __future__ import annotations

from typing import Any

import torch

from ..batch_check import check_batch
from ..device import to_device
from ..terms import PreflightError
from ..wire.ops import call_model
from ..wire.ops_types import TrainPreflightArgs
from .adaptor import apply_adaptor
from .objective import post_adaptor
from .session import DEFAULT_TASK, TrainSession, pop_teacher_outputs, split_batch, teacher_results

__all__ = ["PreflightError", "check_logits_lists", "preflight"]


def check_logits_lists(results_S: dict[str, Any], results_T: list[dict[str, Any]], probability_shift: bool) -> None:
    """A logits_mask list (and, with probabilityShift, a labels list) must hold one tensor for all logits or one
    per logits tensor: paired by position, the logits past the last one would silently leave the KD loss."""
    for side, results in [("student", results_S), *(("teacher", r) for r in results_T)]:
        logits, masks = results.get("logits"), results.get("logits_mask")
        if logits is None or masks is None:
            continue
        if len(masks) not in (1, len(logits)):
            raise PreflightError(
                f"logits_mask: the {side} adaptor gives {len(masks)} logits_mask tensors for {len(logits)} logits "
                f"tensors; return one mask for all of them or one per logits tensor (adaptor{side[0].upper()})"
            )
    logits, labels = results_S.get("logits"), results_S.get("labels")
    if probability_shift and logits is not None and labels is not None and len(labels) != len(logits):
        raise PreflightError(
            f"probabilityShift: the student adaptor gives {len(labels)} labels tensors for {len(logits)} logits "
            "tensors; return one labels tensor per logits tensor (adaptorS)"
        )


def preflight(session: TrainSession, args: TrainPreflightArgs) -> dict[str, Any]:
    task = args["task"] or DEFAULT_TASK
    check_batch(args["batch"])
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    was_training = session.student.training
    session.student.eval()
    try:
        with torch.no_grad(), session.autocast():
            batch, teacher_outputs = pop_teacher_outputs(to_device(args["batch"], session.device))
            batch_T, batch_S = split_batch(batch)
            extra = session.plan["forwardArgs"]
            out_S = call_model(session.student, batch_S, {**extra, **session.flags_S[task]})
            results_S = post_adaptor(apply_adaptor(session.adaptor_S[task], batch_S, out_S))
            topk = None
            if not session.adaptor_T[task]:
                results_T = []
            elif teacher_outputs is not None:
                results_T = [post_adaptor(apply_adaptor(session.adaptor_T[task][0], batch_T, teacher_outputs))]
            else:
                results_T, topk = teacher_results(session, task, batch_T, extra)
            objective = session.objective
            kd = objective.kd
            if kd is not None:
                check_logits_lists(results_S, results_T, kd.probability_shift)
            inputs = objective.inputs(results_S, results_T, {"kdWeight": 1.0, "hardWeight": 1.0}, None, topk)
            for t in objective.terms:
                t.preflight(inputs)
            _, terms = objective.loss(inputs)
            return {"terms": sorted(terms)}
    finally:
        session.student.train(was_training)
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
