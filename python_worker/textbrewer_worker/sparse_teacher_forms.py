"""Sparse forms of teacher outputs for a cache, and how faithful each is, so k can be chosen with numbers.

Two forms per position, both from the teacher's distribution P_T = softmax(logits_T/τ):

  top-k     the k largest log-probabilities (float) and their token ids
  sampled   n token ids drawn i.i.d. from P_T (with replacement; no values stored). The empirical distribution
            P̂(j) = count(j)/n is an unbiased estimate of P_T (E[P̂(j)] = P_T(j)), so the cross-entropy
            −Σ P̂ log P_S and its gradient are unbiased estimates of the dense ones (random-sampling KD, with the
            teacher as its own proposal, so every importance weight is 1/n)

Token ids are stored as int32 (index_dtype), not int64.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .llm_losses import ChunkedRows, _up, chunk_rows_for, log_divergence_rows, reduce_rows, row_temperatures
from .llm_losses import selected_rows as _selected_rows
from .losses import ReductionError, Temperature

__all__ = [
    "index_dtype",
    "sampled_targets",
    "sampled_token_kl_loss",
    "sparse_fidelity",
    "topk_targets",
]


def index_dtype(vocab: int) -> torch.dtype:
    """int32 when every id 0 … vocab − 1 fits (any real vocabulary), else int64. int32 halves int64's bytes; int16
    would halve them again below 32,768 tokens, but the TypeScript tensors (and so the cache records) have no
    int16."""
    return torch.int32 if vocab <= 1 << 31 else torch.int64


def topk_targets(logits_T: Tensor, k: int, temperature: float) -> tuple[Tensor, Tensor]:
    """(log-probabilities (..., k) float32, ids (..., k) in index_dtype(V)) of the k most likely tokens."""
    vocab = logits_T.shape[-1]
    if not 1 <= k <= vocab:
        raise ValueError(f"topK: expected 1 ≤ k ≤ the vocabulary ({vocab}), got {k}")
    values, ids = F.log_softmax(_up(logits_T).float() / temperature, dim=-1).topk(k, dim=-1)
    return values, ids.to(index_dtype(vocab))


def sampled_targets(logits_T: Tensor, n: int, temperature: float, generator: torch.Generator | None = None) -> Tensor:
    """(..., n) token ids drawn i.i.d. from softmax(logits_T/τ) per position, in index_dtype(V)."""
    vocab = logits_T.shape[-1]
    if n < 1:
        raise ValueError(f"samples: expected a positive number of draws per token, got {n}")
    probs = F.softmax(_up(logits_T).float().reshape(-1, vocab) / temperature, dim=-1)
    draws = torch.multinomial(probs, n, replacement=True, generator=generator)
    return draws.reshape(*logits_T.shape[:-1], n).to(index_dtype(vocab))


def _empirical(ids: Tensor, vocab: int, dtype: torch.dtype) -> Tensor:
    """(rows, V) count(j)/n from (rows, n) draws."""
    ids = ids.long()
    weights = torch.full(ids.shape, 1.0 / ids.shape[-1], dtype=dtype, device=ids.device)
    return torch.zeros(ids.shape[0], vocab, dtype=dtype, device=ids.device).scatter_add_(-1, ids, weights)


def sampled_token_kl_loss(
    logits_S: Tensor,
    sampled_ids_T: Tensor,
    temperature: Temperature = 1.0,
    *,
    mask: Tensor | None = None,
    num_tokens: float | Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """Σ_rows τ²·KL(P̂_T‖P_S) / n_rows with P̂_T the empirical distribution of the sampled ids and P_S over all V.

    Its gradient in the student is unbiased for the dense token_kl's (KL and cross-entropy differ by P̂'s entropy,
    which the student does not move).
    """
    name = "sampled token_kl"
    if sampled_ids_T.shape[:-1] != logits_S.shape[:-1]:
        raise ReductionError(
            f"{name}: sampled ids shape {tuple(sampled_ids_T.shape)} does not fit student logits {tuple(logits_S.shape)}"
        )
    rows = _selected_rows(name, logits_S, mask)
    tau, scalar_tau = row_temperatures(name, temperature, logits_S, rows)
    vocab = logits_S.shape[-1]

    def row_fn(tau_c: float | Tensor, s: Tensor, ids: Tensor) -> Tensor:
        log_q = F.log_softmax(_up(s) / tau_c, dim=-1)
        p_hat = _empirical(ids, vocab, log_q.dtype)
        return log_divergence_rows("kl", log_q, p_hat.log(), 0.0)

    flat = [logits_S.reshape(-1, vocab), sampled_ids_T.reshape(-1, sampled_ids_T.shape[-1])]
    chunk = chunk_rows_for(name, chunk_size, vocab)
    per_row: Tensor = ChunkedRows.apply(row_fn, rows, tau, scalar_tau, chunk, *flat)  # type: ignore[assignment]
    return reduce_rows(name, per_row, tau, scalar_tau, num_tokens)


def sparse_fidelity(
    logits_T: Tensor, temperature: float, ks: list[int], samples: list[int], seed: int = 0
) -> dict[str, Any]:
    """On a sample of teacher logits (..., V): how far each sparse form is from the full distribution, and its size.

    For top-k: the mean kept mass Σp, KL(P̂‖P_T) of the renormalised top-k (= −log Σp) and KL(P_T‖P̂) of the top-k
    with the missing mass spread uniformly. For n samples: KL(P̂‖P_T) of the empirical distribution and the mean
    number of distinct ids. Bytes per token, as the cache stores them: top-k float16 values + ids; samples ids + their
    float16 log-probabilities (sampled_cache_form); dense float16 logits.
    All KLs are means over positions, in nats.
    """
    vocab = logits_T.shape[-1]
    log_p = F.log_softmax(_up(logits_T).double().reshape(-1, vocab) / temperature, dim=-1)
    id_bytes = torch.tensor([], dtype=index_dtype(vocab)).element_size()
    out: dict[str, Any] = {
        "positions": log_p.shape[0],
        "vocab": vocab,
        "idBytes": id_bytes,
        "dense": {"bytesPerToken": 2 * vocab},
        "topK": [],
        "sampled": [],
    }
    for k in ks:
        _, ids = topk_targets(logits_T.reshape(-1, vocab), k, temperature)
        lp = log_p.gather(-1, ids.long())
        kept = lp.exp().sum(-1)
        if k < vocab:
            log_u = torch.log((1 - kept).clamp_min(torch.finfo(torch.float64).tiny) / (vocab - k)).unsqueeze(-1)
            log_hat = log_u.expand_as(log_p).scatter(-1, ids.long(), lp)
        else:
            log_hat = log_p
        out["topK"].append(
            {
                "k": k,
                "keptMass": kept.mean().item(),
                "klRenormalizedToFull": (-kept.log()).mean().item(),
                "klFullToUniformTail": log_divergence_rows("kl", log_hat, log_p, 0.0).mean().item(),
                "bytesPerToken": k * (2 + id_bytes),
            }
        )
    g = torch.Generator().manual_seed(seed)
    for n in samples:
        draws = sampled_targets(logits_T.reshape(-1, vocab), n, temperature, g)
        p_hat = _empirical(draws, vocab, torch.float64)
        kl = log_divergence_rows("kl", log_p, p_hat.clamp_min(0).log(), 0.0)
        distinct = (p_hat > 0).sum(-1).double().mean().item()
        out["sampled"].append(
            {
                "samples": n,
                "klSampledToFull": kl.mean().item(),
                "distinctIds": distinct,
                "bytesPerToken": n * (2 + id_bytes),
            }
        )
    return out
