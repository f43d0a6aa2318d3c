"""Checks a training plan on one batch before step 0, so a wrong layer index, a missing feature or a width
mismatch fails with the fix spelled out instead of deep inside a loss. Leaves RNG state and modes as they were.
The batch's masks are checked first (batch_check: shapes against input_ids, finite values); every step checks them
again."""

from __future__ import annotations

from typing import Any

import torch

from .adaptor import apply_adaptor
from .batch_check import check_batch
from .device import to_device
from .objective import distill_loss, match_name, post_adaptor, trainer_loss
from .ops import call_model
from .ops_types import TrainPreflightArgs
from .session import DEFAULT_TASK, TrainSession, pop_teacher_outputs, split_batch, teacher_results

SAME_WIDTH_LOSSES = {"hidden_mse", "cos", "pkd", "fsp", "gram"}
ATTENTION_LOSSES = {"attention_mse", "attention_ce", "attention_mse_sum", "attention_ce_mean"}
HEAD_REDUCED = {"attention_mse_sum", "attention_ce_mean"}


class PreflightError(ValueError):
    """The plan does not fit the models' outputs."""


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else ()


def _pick(features: list[Any], layer: Any, where: str) -> list[torch.Tensor]:
    layers = layer if isinstance(layer, list) else [layer]
    out = []
    for index in layers:
        if not -len(features) <= index < len(features):
            raise PreflightError(f"{where}: layer {index} is out of range; the adaptor gives {len(features)} entries")
        out.append(features[index])
    return out


def check_match(i: int, match: dict[str, Any], results_S: dict[str, Any], results_T: dict[str, Any]) -> None:
    where = f"intermediateMatches[{i}] ({match_name(match)})"
    feature, loss, proj = match["feature"], match["loss"], match.get("proj")
    for side, results in (("student", results_S), ("teacher", results_T)):
        if feature not in results:
            raise PreflightError(
                f"{where}: the {side} adaptor returns no '{feature}'; add it to adaptor{side[0].upper()}"
            )
    feats_S = _pick(results_S[feature], match["layerS"], f"{where}.layerS")
    feats_T = _pick(results_T[feature], match["layerT"], f"{where}.layerT")
    for s, t in zip(feats_S, feats_T):
        dim_S, dim_T = _shape(s)[-1:], _shape(t)[-1:]
        if feature == "hidden" and loss in SAME_WIDTH_LOSSES and proj is None and dim_S != dim_T:
            raise PreflightError(
                f"{where}: student width {dim_S[0]} != teacher width {dim_T[0]}; "
                f'add proj: ["linear", {dim_S[0]}, {dim_T[0]}]'
            )
        if proj is not None:
            if dim_S and proj["dimS"] != dim_S[0]:
                raise PreflightError(f"{where}.proj: dimS is {proj['dimS']} but the student feature is {dim_S[0]} wide")
            if loss in SAME_WIDTH_LOSSES and dim_T and proj["dimT"] != dim_T[0]:
                raise PreflightError(f"{where}.proj: dimT is {proj['dimT']} but the teacher feature is {dim_T[0]} wide")
        if feature == "attention" and loss in ATTENTION_LOSSES and loss not in HEAD_REDUCED and _shape(s) != _shape(t):
            raise PreflightError(
                f"{where}: student attention {list(_shape(s))} != teacher {list(_shape(t))}; with different head "
                "counts use attention_mse_sum or attention_ce_mean"
            )
        if _shape(s)[:2] != _shape(t)[:2]:
            raise PreflightError(
                f"{where}: student and teacher features disagree on batch/length: {list(_shape(s))} vs {list(_shape(t))} "
                "(split batches with different tokenizers cannot be matched position by position)"
            )
    mask = results_S.get("inputs_mask")
    if isinstance(mask, torch.Tensor) and feature == "hidden" and _shape(feats_S[0])[:2] != _shape(mask):
        raise PreflightError(
            f"{where}: inputs_mask {list(_shape(mask))} does not fit the features {list(_shape(feats_S[0]))}"
        )


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
            extra = session.plan.get("forwardArgs") or {}
            out_S = call_model(session.student, batch_S, {**extra, **session.flags_S[task]})
            results_S = post_adaptor(apply_adaptor(session.adaptor_S[task], batch_S, out_S))
            if session.objective is None:
                _, terms = trainer_loss(results_S)
                return {"terms": sorted(terms)}
            if teacher_outputs is not None:
                results_T = [post_adaptor(apply_adaptor(session.adaptor_T[task][0], batch_T, teacher_outputs))]
            else:
                results_T = teacher_results(session, task, batch_T, extra)
            check_logits_lists(results_S, results_T, session.objective.probability_shift)
            for i, match in enumerate(session.objective.matches):
                check_match(i, match, results_S, results_T[0])
            _, terms, _ = distill_loss(
                session.objective, results_S, results_T, None, 1.0, 1.0, session.projections, session.emd
            )
            return {"terms": sorted(terms)}
    finally:
        session.student.train(was_training)
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
