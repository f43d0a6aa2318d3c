"""One intermediate match: a match loss between a student and a teacher feature, with an optional projection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..losses import get_loss, loss_info, mmd_loss
from ..training.optim import torch_group_options
from ..training.projections import build_projection
from .base import PreflightError, Tensor, Term, TermInputs, term

SAME_WIDTH_LOSSES = {"hidden_mse", "cos", "pkd", "fsp", "gram"}
ATTENTION_LOSSES = {"attention_mse", "attention_ce", "attention_mse_sum", "attention_ce_mean"}
HEAD_REDUCED = {"attention_mse_sum", "attention_ce_mean"}


def match_name(match: dict[str, Any]) -> str:
    def layer(x: Any) -> str:
        return "-".join(str(i) for i in x) if isinstance(x, list) else str(x)

    return f"unweighted_{match['feature']}_{match['loss']}_{layer(match['layerS'])}_{layer(match['layerT'])}"


def match_fn(i: int, match: dict[str, Any]) -> Callable[..., Tensor]:
    """The match's loss function, its layer form checked against the loss's metadata."""
    fn = get_loss("match", match["loss"])
    form = loss_info("match", match["loss"]).layers
    for key in ("layerS", "layerT"):
        pair = isinstance(match[key], list)
        if form is not None and pair != (form == "pair"):
            want = "a pair of layer indices [a, b]" if form == "pair" else "one layer index"
            raise ValueError(
                f"intermediateMatches[{i}].{key}: loss '{match['loss']}' takes {want} (its @loss(layers="
                f"'{form}')), got {match[key]}"
            )
    if fn is mmd_loss:
        divisor = match["mmdMaskedDivisor"]
        return lambda s, t, mask=None: mmd_loss(s, t, mask, masked_divisor=divisor)
    return fn


def _select(features: list[Any], index: int, feature: str, side: str, match: dict[str, Any]) -> Tensor:
    if not -len(features) <= index < len(features):
        raise IndexError(
            f"intermediateMatches: layer{side} {index} is out of range: the {'student' if side == 'S' else 'teacher'} "
            f"adaptor's '{feature}' has {len(features)} entries (match {match_name(match)})"
        )
    return features[index]


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else ()


def _pick(features: list[Any], layer: Any, where: str) -> list[Tensor]:
    layers = layer if isinstance(layer, list) else [layer]
    out = []
    for index in layers:
        if not -len(features) <= index < len(features):
            raise PreflightError(f"{where}: layer {index} is out of range; the adaptor gives {len(features)} entries")
        out.append(features[index])
    return out


def check_match(i: int, match: dict[str, Any], results_S: dict[str, Any], results_T: dict[str, Any]) -> None:
    where = f"intermediateMatches[{i}] ({match_name(match)})"
    feature, loss, proj = match["feature"], match["loss"], match["proj"]
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


@term("match")
class MatchTerm(Term):
    """loss(P(student feature[layerS]), teacher feature[layerT], mask=inputs_mask) × weight; P the projection."""

    def __init__(self, spec: dict[str, Any], index: int, device: torch.device) -> None:
        super().__init__(spec, index, device)
        self.fn = match_fn(index, spec)
        self.name = match_name(spec)
        self.proj: nn.Module | None = build_projection(spec["proj"]).to(device) if spec["proj"] else None

    def modules(self) -> list[nn.Module | None]:
        return [self.proj]

    def param_groups(self) -> list[dict[str, Any]]:
        if self.proj is None:
            return []
        return [{"params": list(self.proj.parameters()), **torch_group_options(self.spec["proj"]["groupOptions"])}]

    def preflight(self, inputs: TermInputs) -> None:
        check_match(self.index, self.spec, inputs.results_S, inputs.first_T)

    def __call__(self, inputs: TermInputs) -> tuple[Tensor | None, dict[str, Tensor]]:
        match, results_S, first_T = self.spec, inputs.results_S, inputs.first_T
        feature = match["feature"]
        if feature not in results_S or feature not in first_T:
            side = "student" if feature not in results_S else "teacher"
            raise KeyError(f"intermediateMatches[{self.index}]: the {side} adaptor returns no '{feature}'")
        proj = self.forward_module(self.proj)
        if isinstance(match["layerS"], list):
            inter_S = [_select(results_S[feature], s, feature, "S", match) for s in match["layerS"]]
            inter_T = [_select(first_T[feature], t, feature, "T", match) for t in match["layerT"]]
            if proj is not None:
                inter_S = [proj(s) for s in inter_S]
        else:
            inter_S = _select(results_S[feature], match["layerS"], feature, "S", match)
            inter_T = _select(first_T[feature], match["layerT"], feature, "T", match)
            if proj is not None:
                inter_S = proj(inter_S)
        value = self.fn(inter_S, inter_T, mask=results_S.get("inputs_mask"))
        return value * match["weight"], {self.name: value}
