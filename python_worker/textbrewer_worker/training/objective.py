"""The distillation objective: the plan's terms (terms/), added in plan order to one total."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .. import builtin_losses as _builtin_losses  # noqa: F401  (registers the token-level KD losses)
from ..custom_losses import ensure_registered
from ..terms import Term, TermInputs, build_terms
from ..terms.causal_lm_kd import CausalLmKdTerm
from ..terms.kd import KdTerm, topk_targets

__all__ = ["Objective", "post_adaptor", "target_logits_of", "topk_targets"]

LIST_KEYS = ("logits", "logits_mask", "losses", "labels")


def post_adaptor(results: dict[str, Any]) -> dict[str, Any]:
    """A bare tensor under logits / logits_mask / losses / labels becomes a one-item list, as in TextBrewer."""
    out = dict(results)
    for key in LIST_KEYS:
        if key in out and isinstance(out[key], torch.Tensor):
            out[key] = [out[key]]
    return out


def target_logits_of(results_T: list[dict[str, Any]], width: int | None = None) -> list[torch.Tensor] | None:
    """The teachers' logits as KD targets: one teacher's as they are, several teachers' averaged. Teachers of one
    tokenizer whose heads are padded to different sizes are averaged over the first `width` entries (the shared
    prefix the run's vocabulary check found); other differing widths are refused."""
    if not results_T or not all("logits" in r for r in results_T):
        return None
    per_teacher = [r["logits"] for r in results_T]
    if len(per_teacher) == 1:
        return per_teacher[0]
    return [_mean_of(list(group), width) for group in zip(*per_teacher)]


def _mean_of(logits: list[torch.Tensor], width: int | None) -> torch.Tensor:
    widths = sorted({int(l.shape[-1]) for l in logits})
    if len(widths) > 1:
        if width is None or width > widths[0]:
            raise ValueError(
                f"logits: the teachers give logits of {', '.join(map(str, widths))} entries, which cannot be averaged "
                "entry by entry; MultiTeacherDistiller needs teachers of one vocabulary (or of one tokenizer with "
                "padded heads) and one label set"
            )
        logits = [l[..., :width] for l in logits]
    return torch.stack(logits).mean(0)


class Objective:
    """The plan's terms, built once per training run."""

    def __init__(self, specs: list[dict[str, Any]], device: torch.device, custom_losses: list[dict[str, Any]]) -> None:
        ensure_registered(custom_losses)
        self.terms: list[Term] = build_terms(specs, device)
        # the term that compares teacher and student logits (kd or causal_lm_kd): its temperature is the one sparse
        # targets are stored at, its vocab_prefix (set at configure) the width padded teachers are averaged over
        self.logits_term: KdTerm | CausalLmKdTerm | None = next(
            (t for t in self.terms if isinstance(t, (KdTerm, CausalLmKdTerm))), None
        )

    @property
    def kd(self) -> KdTerm | None:
        """The KD term (its temperature is the one cached top-k targets are stored at), if the plan has one."""
        return next((t for t in self.terms if isinstance(t, KdTerm)), None)

    def modules(self) -> list[nn.Module | None]:
        """Every term's modules, slots numbered in plan order (the keys of projections.safetensors)."""
        return [m for t in self.terms for m in t.modules()]

    def param_groups(self) -> list[dict[str, Any]]:
        return [g for t in self.terms for g in t.param_groups()]

    def inputs(
        self,
        results_S: dict[str, Any],
        results_T: list[dict[str, Any]],
        args: Mapping[str, Any],
        teacher_logits: list[torch.Tensor] | None = None,
        teacher_topk: dict[str, Any] | None = None,
    ) -> TermInputs:
        targets = (
            teacher_logits
            if teacher_logits is not None
            else target_logits_of(results_T, self.logits_term.vocab_prefix if self.logits_term else None)
        )
        return TermInputs(results_S, results_T, teacher_logits, targets, teacher_topk, args)

    def loss(self, inputs: TermInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, unweighted terms by name): each term's weighted value added in plan order."""
        total: torch.Tensor | float = 0.0
        values: dict[str, torch.Tensor] = {}
        for t in self.terms:
            weighted, named = t(inputs)
            if weighted is not None:
                total = total + weighted
            values.update(named)
        if not isinstance(total, torch.Tensor):
            raise ValueError(
                "the objective is empty: neither KD (both adaptors need 'logits'), nor matches, nor 'losses' applied"
            )
        return total, values
