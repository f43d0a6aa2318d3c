"""BERT-EMD: every student layer learns from every teacher layer (see ..emd for the loss), plus the embeddings."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..emd import EMBEDDING_LOG_NAME, EMD_LOG_NAME, emd_loss, emd_projections
from ..training.distributed import mean_tensor_over_ranks
from .base import Tensor, Term, TermInputs, term


@term("emd")
class EmdTerm(Term):
    """(L_emd + embedding term) × weight, with one projection per student hidden state when `proj` is given."""

    def __init__(self, spec: dict[str, Any], index: int, device: torch.device) -> None:
        super().__init__(spec, index, device)
        proj = spec["proj"]
        self.weight = float(spec["weight"])
        self.projections: list[nn.Module | None] = (
            [p.to(device) for p in emd_projections(spec["layerNumS"], proj["dimS"], proj["dimT"], proj["kind"])]
            if proj
            else [None] * spec["layerNumS"]
        )

    def modules(self) -> list[nn.Module | None]:
        return list(self.projections)

    def param_groups(self) -> list[dict[str, Any]]:
        params = [w for p in self.projections if p is not None for w in p.parameters()]
        return [{"params": params}] if params else []

    def __call__(self, inputs: TermInputs) -> tuple[Tensor | None, dict[str, Tensor]]:
        results_S, first_T = inputs.results_S, inputs.first_T
        if "hidden" not in results_S or "hidden" not in first_T:
            raise KeyError("emd: both adaptors must return 'hidden' (embeddings first, then every layer)")
        emd_term, embedding_term, _ = emd_loss(
            results_S["hidden"],
            first_T["hidden"],
            [self.forward_module(p) for p in self.projections],
            results_S.get("inputs_mask"),
            shared_cost=mean_tensor_over_ranks,
        )
        return (emd_term + embedding_term) * self.weight, {EMD_LOG_NAME: emd_term, EMBEDDING_LOG_NAME: embedding_term}
