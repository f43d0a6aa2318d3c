"""Token-level KL, reverse KL and generalized JSD against sparse (top-k) teacher targets, chunked over positions.

The teacher is known at each position by its k largest log-probabilities at temperature τ, log p_k at token ids
idx_k (full-vocabulary softmax, so Σ p_k ≤ 1); the student by its logits s (log q = log_softmax(s/τ) over all V).
A tail convention turns the two into distributions over one support, then the dense divergence of
llm_losses.log_divergence_rows applies (× τ² per position, averaged over the valid positions):

  renormalize  support S: P̂_T = p/Σ_S p and P̂_S = q/Σ_S q (both renormalised on S)
  uniform      the whole vocabulary: P̂_T = p_k on the top-k, (1 − Σp)/(V − k) on each other token; P̂_S = q
  bucket       S plus one "tail" entry: P̂_T = (p on S, 1 − Σ_S p), P̂_S = (q on S, 1 − Σ_S q)

with the support S chosen by `support`:
  teacher      S = the teacher's top-k
  both         S = the teacher's top-k ∪ the student's top-k (its k largest logits at this position); the teacher's
               probability at a student token outside its top-k is its uniform share (1 − Σp)/(V − k)

At k = V every convention gives the dense loss. The uniform tail covers the vocabulary, so `support` does not apply
to it (refused). Tail masses are clamped to the dtype's smallest normal number, so a top-k that holds all the mass
costs a negligible term rather than −inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .llm_losses import (
    ChunkedRows,
    TokenLossKind,
    _check_param,
    _up,
    chunk_rows_for,
    log_divergence_rows,
    reduce_rows,
    row_temperatures,
    selected_rows,
)
from .losses import SPARSE_KD_LOSSES, Temperature, _check_topk_shapes

SparseTail = Literal["renormalize", "uniform", "bucket"]
SparseSupport = Literal["teacher", "both"]
SPARSE_TAILS: tuple[SparseTail, ...] = ("renormalize", "uniform", "bucket")
SPARSE_SUPPORTS: tuple[SparseSupport, ...] = ("teacher", "both")
SPARSE_TOKEN_KINDS: tuple[TokenLossKind, ...] = ("kl", "reverse_kl", "jsd")

__all__ = ["SPARSE_SUPPORTS", "SPARSE_TAILS", "SPARSE_TOKEN_KINDS", "sparse_divergence_rows", "sparse_token_kd_loss"]


def _log_rest(log_mass: Tensor) -> Tensor:
    """log(1 − Σ exp(log_mass)) over the last dim, clamped at the dtype's smallest normal number."""
    tiny = torch.finfo(log_mass.dtype).tiny
    return torch.log((1.0 - log_mass.exp().sum(-1, keepdim=True)).clamp_min(tiny))


def sparse_divergence_rows(
    kind: TokenLossKind, log_q: Tensor, lp: Tensor, idx: Tensor, tail: SparseTail, support: SparseSupport, param: float
) -> Tensor:
    """D(row) of student log-probabilities log_q (n, V) against teacher top-k log-probabilities lp at idx (n, k)."""
    vocab, k = log_q.shape[-1], idx.shape[-1]
    if k == vocab:
        log_t = torch.empty_like(log_q).scatter_(-1, idx, lp)
        return log_divergence_rows(kind, log_q, log_t, param)
    log_u = _log_rest(lp) - math.log(vocab - k)  # (n, 1): the teacher's share of each token outside its top-k
    if tail == "uniform":
        log_t = log_u.expand_as(log_q).scatter(-1, idx, lp)
        return log_divergence_rows(kind, log_q, log_t, param)
    if support == "both":
        extra = log_q.detach().topk(k, dim=-1).indices
        fresh = ~(extra.unsqueeze(-1) == idx.unsqueeze(-2)).any(-1)  # student picks not already in the teacher's
        ids = torch.cat([idx, extra], dim=-1)
        valid = torch.cat([torch.ones_like(fresh), fresh], dim=-1)
        lt = torch.cat([lp, log_u.expand_as(lp)], dim=-1)
    else:
        ids, valid, lt = idx, torch.ones_like(idx, dtype=torch.bool), lp
    ls = log_q.gather(-1, ids)
    neg_inf = torch.full_like(ls, -math.inf)
    lt, ls = torch.where(valid, lt, neg_inf), torch.where(valid, ls, neg_inf)
    if tail == "renormalize":
        lt = lt - torch.logsumexp(lt, dim=-1, keepdim=True)
        ls = ls - torch.logsumexp(ls, dim=-1, keepdim=True)
        return log_divergence_rows(kind, ls, lt, param, valid)
    ones = torch.ones_like(valid[..., :1])
    return log_divergence_rows(
        kind,
        torch.cat([ls, _log_rest(ls)], dim=-1),
        torch.cat([lt, _log_rest(lt)], dim=-1),
        param,
        torch.cat([valid, ones], dim=-1),
    )


def sparse_token_kd_loss(
    kind: TokenLossKind,
    logits_S: Tensor,
    topk_logprobs_T: Tensor,
    topk_indices_T: Tensor,
    temperature: Temperature = 1.0,
    *,
    tail: SparseTail = "renormalize",
    support: SparseSupport = "teacher",
    mask: Tensor | None = None,
    num_tokens: float | Tensor | None = None,
    beta: float = 0.5,
    chunk_size: int | None = None,
) -> Tensor:
    """Σ_{rows with mask ≠ 0} τ²·D(row) / (num_tokens or the number of those rows) against top-k teacher targets.

    logits_S (..., V); topk_logprobs_T, topk_indices_T (..., k): the teacher's log-probabilities at temperature τ
    (full-vocabulary softmax) at distinct token ids. kind: kl, reverse_kl or jsd (β as in token_jsd).
    """
    name = f"sparse token_{kind}"
    if kind not in SPARSE_TOKEN_KINDS:
        raise ValueError(
            f"{name}: no sparse form; sparse teacher targets work with {', '.join(SPARSE_TOKEN_KINDS)} "
            "(or cache dense logits)"
        )
    if tail not in SPARSE_TAILS:
        raise ValueError(f"{name}: tail must be one of {', '.join(SPARSE_TAILS)}, got {tail!r}")
    if support not in SPARSE_SUPPORTS:
        raise ValueError(f"{name}: support must be one of {', '.join(SPARSE_SUPPORTS)}, got {support!r}")
    if tail == "uniform" and support != "teacher":
        raise ValueError(
            f"{name}: the uniform tail covers the whole vocabulary; support {support!r} needs tail "
            "'renormalize' or 'bucket'"
        )
    _check_topk_shapes(name, logits_S, topk_logprobs_T, topk_indices_T)
    vocab = logits_S.shape[-1]
    param = _check_param(kind, beta, 0.0)
    rows = selected_rows(name, logits_S, mask)
    tau, scalar_tau = row_temperatures(name, temperature, logits_S, rows)
    chunk = chunk_rows_for(name, chunk_size, vocab)

    def row_fn(tau_c: float | Tensor, s: Tensor, lp: Tensor, idx: Tensor) -> Tensor:
        log_q = F.log_softmax(_up(s) / tau_c, dim=-1)
        return sparse_divergence_rows(kind, log_q, _up(lp).to(log_q.dtype), idx.long(), tail, support, param)

    flat = [x.reshape(-1, x.shape[-1]) for x in (logits_S, topk_logprobs_T, topk_indices_T)]
    per_row: Tensor = ChunkedRows.apply(row_fn, rows, tau, scalar_tau, chunk, *flat)  # type: ignore[assignment]
    return reduce_rows(name, per_row, tau, scalar_tau, num_tokens)


# the teacher cache's `tail` names: "ignore" (its default) is this module's "renormalize"
_CACHE_TAILS: dict[str, SparseTail] = {
    "ignore": "renormalize",
    "renormalize": "renormalize",
    "uniform": "uniform",
    "bucket": "bucket",
}


def _cache_form(kind: TokenLossKind) -> Callable[..., Tensor]:
    def form(
        logits_S: Tensor,
        topk_logprobs_T: Tensor,
        topk_indices_T: Tensor,
        temperature: Temperature = 1.0,
        tail: str = "ignore",
        support: SparseSupport = "teacher",
    ) -> Tensor:
        if tail not in _CACHE_TAILS:
            raise ValueError(
                f"teacherCache.tail: {tail!r} is not a tail for kdLossType 'token_{kind}'; use 'ignore' "
                "(renormalise the top-k), 'uniform' or 'bucket'"
            )
        return sparse_token_kd_loss(
            kind, logits_S, topk_logprobs_T, topk_indices_T, temperature, tail=_CACHE_TAILS[tail], support=support
        )

    return form


# the token losses that learn from a top-k teacher cache, next to the classic 'ce' and 'kl' (losses.json: sparse)
for _kind in SPARSE_TOKEN_KINDS:
    SPARSE_KD_LOSSES[f"token_{_kind}"] = _cache_form(_kind)
