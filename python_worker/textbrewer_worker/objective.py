"""The distillation objective: KD on logits, intermediate matches, hard-label losses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from . import builtin_losses as _builtin_losses  # noqa: F401  (registers the token-level KD losses)
from .emd import EMBEDDING_LOG_NAME, EMD_LOG_NAME, emd_loss
from .losses import get_loss, get_sparse_kd_loss, loss_info, mmd_loss, probability_shift_, select_logits
from .sparse_teacher_forms import index_dtype
from .temperature import build_temperature

LIST_KEYS = ("logits", "logits_mask", "losses", "labels")


def post_adaptor(results: dict[str, Any]) -> dict[str, Any]:
    """A bare tensor under logits / logits_mask / losses / labels becomes a one-item list, as in TextBrewer."""
    out = dict(results)
    for key in LIST_KEYS:
        if key in out and isinstance(out[key], torch.Tensor):
            out[key] = [out[key]]
    return out


@dataclass
class Objective:
    """What a plan asks for; built once per training run."""

    kd_loss_type: str | None
    temperature: float
    temperature_scheduler: dict[str, Any]
    probability_shift: bool
    matches: list[dict[str, Any]]
    mmd_masked_divisor: Literal["hidden", "length"] = "hidden"
    require_logits: bool = False
    temperature_fn: Callable[..., Any] = field(init=False)

    def __post_init__(self) -> None:
        self.temperature_fn = build_temperature(self.temperature_scheduler)
        self.kd_fn = get_loss("kd", self.kd_loss_type) if self.kd_loss_type else None
        self.match_fns = [self._match_fn(i, m) for i, m in enumerate(self.matches)]

    def _match_fn(self, i: int, match: dict[str, Any]) -> Callable[..., torch.Tensor]:
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
            divisor = self.mmd_masked_divisor
            return lambda s, t, mask=None: mmd_loss(s, t, mask, masked_divisor=divisor)
        return fn


def topk_targets(logits: list[torch.Tensor], k: int, temperature: float) -> list[torch.Tensor]:
    """Per logits tensor: the top-k teacher log-probabilities at `temperature` (full-vocabulary softmax) and their
    indices (int32), as [values_0, indices_0, values_1, indices_1, ...]."""
    out: list[torch.Tensor] = []
    for l in logits:
        logprobs = torch.log_softmax(l.float() / temperature, dim=-1)
        values, indices = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
        out.extend([values, indices.to(index_dtype(logprobs.shape[-1]))])  # int32 ids: half the bytes of int64
    return out


def masks_for(logits: list[torch.Tensor], masks: list[torch.Tensor] | None, side: str) -> list[torch.Tensor] | None:
    """One logits_mask per logits tensor: a single mask applies to every one (as in TextBrewer), else the
    counts must agree (zip would silently drop the logits past the last mask)."""
    if masks is None:
        return None
    if len(masks) == 1:
        return masks * len(logits)
    if len(masks) != len(logits):
        raise ValueError(
            f"logits_mask: the {side} adaptor gives {len(masks)} logits_mask tensors for {len(logits)} logits "
            "tensors; give one mask for all of them or one per logits tensor"
        )
    return masks


def sparse_kd_term(
    objective: Objective,
    logits_S: list[torch.Tensor],
    masks_S: list[torch.Tensor] | None,
    topk: dict[str, Any],
) -> torch.Tensor:
    flat = topk["targets"]
    pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
    if len(pairs) != len(logits_S):
        raise ValueError(f"teacherTopK: {len(pairs)} cached logits for {len(logits_S)} student logits")
    loss_fn = get_sparse_kd_loss(objective.kd_loss_type or "ce")
    # only the token losses choose a support; the classic ce/kl take the teacher's top-k
    support = {"support": topk["support"]} if topk.get("support", "teacher") != "teacher" else {}
    if support and not (objective.kd_loss_type or "").startswith("token_"):
        raise ValueError(
            f"teacherCache.support: '{topk['support']}' needs kdLossType token_kl, token_reverse_kl or token_jsd; "
            f"'{objective.kd_loss_type or 'ce'}' learns on the teacher's top-k (support: 'teacher')"
        )
    masks = masks_for(logits_S, masks_S, "student")
    total: torch.Tensor | float = 0.0
    for i, (l_S, (values, indices)) in enumerate(zip(logits_S, pairs)):
        if masks is not None:
            l_S, values, indices = (select_logits(x, masks[i]) for x in (l_S, values, indices))
        total = total + loss_fn(l_S, values, indices, objective.temperature, tail=topk.get("tail", "ignore"), **support)
    return total  # type: ignore[return-value]


def match_name(match: dict[str, Any]) -> str:
    def layer(x: Any) -> str:
        return "-".join(str(i) for i in x) if isinstance(x, list) else str(x)

    return f"unweighted_{match['feature']}_{match['loss']}_{layer(match['layerS'])}_{layer(match['layerT'])}"


def _select(features: list[Any], index: int, feature: str, side: str, match: dict[str, Any]) -> torch.Tensor:
    if not -len(features) <= index < len(features):
        raise IndexError(
            f"intermediateMatches: layer{side} {index} is out of range: the {'student' if side == 'S' else 'teacher'} "
            f"adaptor's '{feature}' has {len(features)} entries (match {match_name(match)})"
        )
    return features[index]


def kd_term(
    objective: Objective,
    logits_S: list[torch.Tensor],
    logits_T: list[torch.Tensor],
    masks_S: list[torch.Tensor] | None,
    masks_T: list[torch.Tensor] | None,
    labels: list[torch.Tensor] | None,
) -> torch.Tensor:
    if len(logits_S) != len(logits_T):
        raise ValueError(f"logits: the student gives {len(logits_S)} logits tensors and the teacher {len(logits_T)}")
    masks_S = masks_for(logits_S, masks_S, "student")
    masks_T = masks_for(logits_T, masks_T, "teacher")
    if masks_S is not None:
        logits_S = [select_logits(l, m) for l, m in zip(logits_S, masks_S)]
    if masks_T is not None:
        logits_T = [select_logits(l, m) for l, m in zip(logits_T, masks_T)]
    if objective.probability_shift:
        if labels is None:
            raise ValueError("probabilityShift: the student adaptor must return 'labels'")
        if len(labels) != len(logits_T):
            raise ValueError(
                f"probabilityShift: the student adaptor gives {len(labels)} labels tensors for {len(logits_T)} "
                "logits tensors; give one labels tensor per logits tensor"
            )
        # clone: never mutate the caller's tensors (e.g. cached teacher logits)
        logits_T = [probability_shift_(l.clone(), y) for l, y in zip(logits_T, labels)]
    total: torch.Tensor | float = 0.0
    assert objective.kd_fn is not None
    for l_S, l_T in zip(logits_S, logits_T):
        if l_S.shape != l_T.shape:
            raise ValueError(
                f"logits: student shape {tuple(l_S.shape)} != teacher shape {tuple(l_T.shape)} "
                "(after logits_mask selection); the two must have the same classes and selected rows"
            )
        temperature = objective.temperature_fn(l_S, l_T, objective.temperature)
        total = total + objective.kd_fn(l_S, l_T, temperature)
    return total  # type: ignore[return-value]


def distill_loss(
    objective: Objective,
    results_S: dict[str, Any],
    results_T: list[dict[str, Any]],
    teacher_logits: list[torch.Tensor] | None,
    kd_weight: float,
    hard_weight: float,
    projections: list[torch.nn.Module | None],
    emd: dict[str, Any] | None = None,
    teacher_topk: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[torch.Tensor] | None]:
    """Returns (total, unweighted terms, the teacher logits used as KD targets before masking/shift).

    results_T holds one entry per teacher (MultiTeacher averages their logits); teacher_logits, when given,
    stands in for the teachers' logits (a cache hit).
    """
    total: torch.Tensor | float = 0.0
    terms: dict[str, torch.Tensor] = {}
    first_T = results_T[0] if results_T else {}
    target_logits: list[torch.Tensor] | None = teacher_logits
    if target_logits is None and results_T and all("logits" in r for r in results_T):
        per_teacher = [r["logits"] for r in results_T]
        if len(per_teacher) == 1:
            target_logits = per_teacher[0]
        else:
            target_logits = [torch.stack(group).mean(0) for group in zip(*per_teacher)]
    if objective.require_logits and ("logits" not in results_S or (target_logits is None and teacher_topk is None)):
        side = "student" if "logits" not in results_S else "teacher"
        raise KeyError(f"logits: the {side} adaptor must return 'logits' for this distiller")
    if teacher_topk is not None:
        if "logits" not in results_S:
            raise KeyError("logits: the student adaptor must return 'logits' to learn from cached top-k teacher logits")
        kd = sparse_kd_term(objective, results_S["logits"], results_S.get("logits_mask"), teacher_topk)
        total = total + kd * kd_weight
        terms["unweighted_kd_loss"] = kd
    elif objective.kd_fn is not None and "logits" in results_S and target_logits is not None:
        kd = kd_term(
            objective,
            results_S["logits"],
            target_logits,
            results_S.get("logits_mask"),
            first_T.get("logits_mask", results_S.get("logits_mask") if teacher_logits is not None else None),
            results_S.get("labels"),
        )
        total = total + kd * kd_weight
        terms["unweighted_kd_loss"] = kd
    inputs_mask = results_S.get("inputs_mask")
    for i, (match, fn) in enumerate(zip(objective.matches, objective.match_fns)):
        feature = match["feature"]
        if feature not in results_S or feature not in first_T:
            side = "student" if feature not in results_S else "teacher"
            raise KeyError(f"intermediateMatches[{i}]: the {side} adaptor returns no '{feature}'")
        proj = projections[i] if i < len(projections) else None
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
        value = fn(inter_S, inter_T, mask=inputs_mask)
        total = total + value * match["weight"]
        terms[match_name(match)] = value
    if emd is not None:
        if "hidden" not in results_S or "hidden" not in first_T:
            raise KeyError("emd: both adaptors must return 'hidden' (embeddings first, then every layer)")
        emd_term, embedding_term, _ = emd_loss(results_S["hidden"], first_T["hidden"], emd["projections"], inputs_mask)
        total = total + (emd_term + embedding_term) * emd["weight"]
        terms[EMD_LOG_NAME] = emd_term
        terms[EMBEDDING_LOG_NAME] = embedding_term
    if "losses" in results_S:
        hard: torch.Tensor | float = 0.0
        for loss in results_S["losses"]:
            hard = hard + loss.mean()
        total = total + hard * hard_weight
        terms["unweighted_hard_label_loss"] = hard  # type: ignore[assignment]
    if not isinstance(total, torch.Tensor):
        raise ValueError(
            "the objective is empty: neither KD (both adaptors need 'logits'), nor matches, nor 'losses' applied"
        )
    return total, terms, target_logits


def trainer_loss(results: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if "losses" not in results:
        raise KeyError(
            "losses: BasicTrainer needs the adaptor to return 'losses' (e.g. out.loss with labels in the batch)"
        )
    total: torch.Tensor | float = 0.0
    for loss in results["losses"]:
        total = total + loss.mean()
    return total, {}  # type: ignore[return-value]
