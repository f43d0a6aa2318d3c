"""Sampled teacher targets as a teacher-cache form (teacherCache.samples), and the KD losses that learn from them.

Per position the cache keeps n token ids j_1 … j_n drawn i.i.d. from the teacher's distribution P_T =
softmax(logits_T/τ) (with replacement) and the teacher's log-probability log P_T(j_i) of each draw. The teacher is
its own proposal, so every draw has importance weight 1/n, and for any function f of the token
E[(1/n)·Σ_i f(j_i)] = Σ_j P_T(j)·f(j). Hence, with log q = log_softmax(logits_S/τ) over the student's V tokens,

  ce        (1/n)·Σ_i −log q(j_i)                    unbiased for 'ce'  = −Σ P_T log q       (no τ², as 'ce')
  kl        τ²·(1/n)·Σ_i (log P_T(j_i) − log q(j_i))  unbiased for 'kl'  = τ²·KL(P_T‖q)         (token_kl alike)

unbiased in value and in gradient (a single estimate of kl can be below 0; its mean over draws is the KL). The
stored log-probabilities make the kl value unbiased; ids alone (sampled_token_kl_loss) give an unbiased gradient
but a value biased upwards by the entropy the empirical distribution misses. Each loss is averaged over the rows.
Ids are stored in index_dtype (int32), log-probabilities in the cache's float dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .llm_losses import ChunkedRows, _up, chunk_rows_for, reduce_rows, selected_rows
from .losses import ReductionError
from .sparse_teacher_forms import sampled_targets

__all__ = ["SAMPLED_KD_LOSSES", "get_sampled_kd_loss", "sampled_cache_targets", "sampled_kd_loss"]

SampledKind = Literal["ce", "kl"]


def sampled_cache_targets(logits: list[Tensor], n: int, temperature: float, seed: int) -> list[Tensor]:
    """Per logits tensor (..., V): the log-probabilities (..., n) float32 of n ids drawn from softmax(logits/τ) per
    row, and the ids (..., n) in index_dtype(V), as [logprobs_0, ids_0, logprobs_1, ids_1, ...] (top-k's layout).
    The draws use their own generator seeded with `seed`, so the training RNG is left as it was."""
    out: list[Tensor] = []
    for l in logits:
        generator = torch.Generator(device=l.device).manual_seed(seed)
        ids = sampled_targets(l.detach(), n, temperature, generator)
        logprobs = F.log_softmax(_up(l.detach()).float() / temperature, dim=-1).gather(-1, ids.long())
        out.extend([logprobs, ids])
    return out


def sampled_kd_loss(
    kind: SampledKind,
    logits_S: Tensor,
    logprobs_T: Tensor,
    ids_T: Tensor,
    temperature: float = 1.0,
    *,
    mask: Tensor | None = None,
    num_tokens: float | Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """The sampled estimate of 'ce' or 'kl' (module docstring) summed over the rows (mask ≠ 0) and divided by
    num_tokens (default: the number of those rows), chunked over rows.

    logits_S (..., V); logprobs_T, ids_T (..., n): the teacher's log-probabilities at temperature τ of n draws.
    """
    name = f"sampled {kind}"
    if logprobs_T.shape != ids_T.shape or ids_T.shape[:-1] != logits_S.shape[:-1]:
        raise ReductionError(
            f"{name}: student logits shape {tuple(logits_S.shape)} does not fit sampled targets of shapes "
            f"{tuple(logprobs_T.shape)} (log-probabilities) and {tuple(ids_T.shape)} (ids)"
        )
    vocab = logits_S.shape[-1]
    rows = selected_rows(name, logits_S, mask)

    def row_fn(tau_c: float | Tensor, s: Tensor, lp: Tensor, ids: Tensor) -> Tensor:
        log_q = F.log_softmax(_up(s) / tau_c, dim=-1).gather(-1, ids.long())
        return (-log_q if kind == "ce" else _up(lp).to(log_q.dtype) - log_q).mean(-1)

    flat = [x.reshape(-1, x.shape[-1]) for x in (logits_S, logprobs_T, ids_T)]
    chunk = chunk_rows_for(name, chunk_size, vocab)
    per_row: Tensor = ChunkedRows.apply(row_fn, rows, None, float(temperature), chunk, *flat)  # type: ignore[assignment]
    return reduce_rows(name, per_row, None, float(temperature) if kind == "kl" else 1.0, num_tokens)


def _form(kind: SampledKind) -> Callable[..., Tensor]:
    def form(logits_S: Tensor, logprobs_T: Tensor, ids_T: Tensor, temperature: float = 1.0) -> Tensor:
        return sampled_kd_loss(kind, logits_S, logprobs_T, ids_T, temperature)

    return form


# kdLossType → its loss on sampled targets; token_kl equals kl
SAMPLED_KD_LOSSES: dict[str, Callable[..., Tensor]] = {"ce": _form("ce"), "kl": _form("kl"), "token_kl": _form("kl")}


def get_sampled_kd_loss(name: str) -> Callable[..., Tensor]:
    """The sampled form of KD loss `name`; another loss raises ValueError naming the ones that have one."""
    if name not in SAMPLED_KD_LOSSES:
        raise ValueError(
            f"kdLossType '{name}' cannot learn from sampled teacher targets (teacherCache.samples): use kdLossType "
            f"{' or '.join(repr(n) for n in SAMPLED_KD_LOSSES)}, top-k targets (teacherCache.topK) or dense logits"
        )
    return SAMPLED_KD_LOSSES[name]
