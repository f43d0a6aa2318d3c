"""BERT-EMD layer matching (TextBrewer's EMDDistiller example).

Every student layer may learn from every teacher layer. With LS and LT the layer counts without the
embeddings, the cost matrix ``D`` is (LS+LT)×(LS+LT)::

    D[s, LS+t] = D[LS+t, s] = hidden_mse(P_{s+1}(h_S[s+1]), h_T[t+1], mask)     s < LS, t < LT
    D[i, j]    = 0                                                               otherwise

The student block carries the masses ``a = [w_S, 0…0]`` and the teacher block ``b = [0…0, w_T]``, uniform
(1/LS, 1/LT) unless weights are given. The flow ``F`` is the optimal plan of the transport LP
``min Σ F·D  s.t.  F·1 = a, Fᵀ·1 = b, F ≥ 0``, solved on the detached float64 ``D``; the loss is
``L_emd = Σ F·D``, so the gradient goes through ``D`` only (``F`` is a constant). The embedding term
``hidden_mse(P_0(h_S[0]), h_T[0], mask)`` is returned separately; the caller adds it with the same weight
and logs the two terms as ``unweighted_hidden_hidden_mse_emd`` and ``unweighted_embedding_hidden_mse``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .losses import ReductionError, hid_mse_loss
from .training.projections import build_projection

Tensor = torch.Tensor

__all__ = [
    "EMBEDDING_LOG_NAME",
    "EMD_LOG_NAME",
    "emd_loss",
    "emd_projections",
    "transport_flow",
]

EMD_LOG_NAME = "unweighted_hidden_hidden_mse_emd"
EMBEDDING_LOG_NAME = "unweighted_embedding_hidden_mse"

_NUM_ITER_MAX = 1_000_000


def _masses(name: str, weights: Tensor | None, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n, dtype=np.float64)
    w = weights.detach().to("cpu", torch.float64).reshape(-1).numpy()
    if w.shape[0] != n:
        raise ReductionError(f"emd: {name} has {w.shape[0]} entries, expected {n} (one per layer)")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ReductionError(f"emd: {name} must be finite, non-negative and not all zero")
    return w / w.sum()


def _pot() -> Any:
    """POT (module ``ot``), an extra of the managed environment: imported when EMD first solves a transport."""
    try:
        import ot  # pyright: ignore[reportMissingImports]  (an extra: absent from a lean environment)
    except ImportError as err:
        raise ImportError(
            "emd: the EMD losses need POT (module 'ot'); the managed environment adds it with "
            "`npx textbrewer setup --with emd` (with TEXTBREWER_PYTHON: pip install POT==0.9.6)"
        ) from err
    return ot


def transport_flow(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Optimal plan of the exact transport LP between masses ``a`` and ``b`` (equal sums) under ``cost``.

    Solved with POT's network simplex (``ot.emd``) in float64. A non-finite cost gives an all-NaN plan, so
    the loss turns NaN as any other loss would instead of failing inside the solver.
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    if not np.all(np.isfinite(cost)):
        return np.full(cost.shape, np.nan, dtype=np.float64)
    flow, log = _pot().emd(a, b, cost, numItermax=_NUM_ITER_MAX, log=True)
    if log.get("result_code", 1) != 1:
        raise RuntimeError(f"emd: the transport solver did not reach an optimum ({log.get('warning')})")
    return np.asarray(flow, dtype=np.float64)


def _project(proj: nn.Module | None, h: Tensor) -> Tensor:
    return h if proj is None else proj(h)


def emd_loss(
    hidden_S: Sequence[Tensor],
    hidden_T: Sequence[Tensor],
    projections: Sequence[nn.Module | None] | None,
    mask: Tensor | None,
    weights_S: Tensor | None = None,
    weights_T: Tensor | None = None,
    shared_cost: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """BERT-EMD loss between all student and all teacher layers.

    Args:
        hidden_S: student hidden states, entry 0 the embeddings, then one (B, L, D_S) tensor per layer.
        hidden_T: teacher hidden states, the same layout with D_T.
        projections: one module (or None for identity) per entry of ``hidden_S``; entry 0 projects the
            embeddings. ``None`` as a whole means no projection anywhere.
        mask: (B, L) inputs mask passed to ``hidden_mse``, or None.
        weights_S, weights_T: optional layer masses (LS,) and (LT,); each is normalised to sum 1. The
            default is uniform, as in TextBrewer, whose re-weighting code is commented out.
        shared_cost: maps the detached float64 cost to the one the flow is solved on; data-parallel ranks
            pass their mean over the ranks, so every rank solves the whole batch's transport, not its shard's.

    Returns:
        ``(emd_term, embedding_term, {"flow": F, "cost": D})`` where ``emd_term = Σ F·D`` (differentiable
        through D), ``embedding_term = hidden_mse(P_0(h_S[0]), h_T[0], mask)``, F is the (LS+LT, LS+LT)
        float64 CPU tensor of the optimal flow and D the detached cost matrix.

    TextBrewer's example computes F with pyemd's ``emd_with_flow``; this port uses POT's exact solver
    (``ot.emd``) on the same detached float64 D. Both are exact, so the optimal cost ``Σ F·D`` is the same,
    but when the LP has ties (several optimal plans, e.g. equal costs) the solvers may return a different
    F, and with it a different split of the gradient across layer pairs.
    """
    n_s, n_t = len(hidden_S) - 1, len(hidden_T) - 1
    if n_s < 1 or n_t < 1:
        raise ReductionError(
            f"emd: need the embeddings plus at least one layer on each side, got {len(hidden_S)} student "
            f"and {len(hidden_T)} teacher hidden states"
        )
    if projections is None:
        projections = [None] * len(hidden_S)
    if len(projections) != len(hidden_S):
        raise ReductionError(
            f"emd: {len(projections)} projections for {len(hidden_S)} student hidden states "
            "(one per student layer, index 0 for the embeddings)"
        )

    embedding_term = hid_mse_loss(_project(projections[0], hidden_S[0]), hidden_T[0], mask)

    projected = [_project(projections[s + 1], hidden_S[s + 1]) for s in range(n_s)]
    pair_cost = torch.stack(
        [torch.stack([hid_mse_loss(projected[s], hidden_T[t + 1], mask) for t in range(n_t)]) for s in range(n_s)]
    )  # (LS, LT)
    zeros_ss = pair_cost.new_zeros(n_s, n_s)
    zeros_tt = pair_cost.new_zeros(n_t, n_t)
    cost = torch.cat(
        [torch.cat([zeros_ss, pair_cost], dim=1), torch.cat([pair_cost.t(), zeros_tt], dim=1)], dim=0
    )  # (LS+LT, LS+LT), symmetric

    a = np.concatenate([_masses("weights_S", weights_S, n_s), np.zeros(n_t)])
    b = np.concatenate([np.zeros(n_s), _masses("weights_T", weights_T, n_t)])
    detached = cost.detach().to(torch.float64)
    if shared_cost is not None:
        detached = shared_cost(detached)
    cost_np = detached.cpu().numpy()
    flow = torch.from_numpy(transport_flow(a, b, cost_np))

    emd_term = (flow.to(device=cost.device, dtype=cost.dtype) * cost).sum()
    return emd_term, embedding_term, {"flow": flow, "cost": cost.detach()}


def emd_projections(layer_num_S: int, dim_S: int, dim_T: int, kind: str) -> list[nn.Module]:
    """One projection per student hidden state, ``layer_num_S`` counting the embeddings (index 0).

    ``kind`` is linear, relu or tanh; weights ~ N(0, 0.02), bias 0, as TextBrewer's projections.
    """
    if layer_num_S < 2:
        raise ValueError(f"emd: layer_num_S counts the embeddings and must be at least 2, got {layer_num_S}")
    return [build_projection({"kind": kind, "dimS": dim_S, "dimT": dim_T}) for _ in range(layer_num_S)]
