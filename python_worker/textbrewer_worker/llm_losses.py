"""Token-level KD losses for language models, computed in chunks of positions.

Logits are (..., V): every leading dimension is a position (B·L rows for causal-LM logits). With s = logits_S/τ,
t = logits_T/τ, P_S = softmax(s), P_T = softmax(t), each loss is, per row (position):

  kl               KL(P_T‖P_S) = Σ P_T (log P_T − log P_S)                        (forward KL)
  reverse_kl       KL(P_S‖P_T)
  jsd (β ∈ [0,1])  β·KL(P_T‖M) + (1−β)·KL(P_S‖M),  M = β·P_T + (1−β)·P_S; β = 0 is KL(P_T‖P_S) and β = 1 is
                   KL(P_S‖P_T) exactly (not the 0 of the formula's limit): TRL GKD's generalized_jsd_loss, same β
  skew_kl (α)      KL(P_T ‖ α·P_T + (1−α)·P_S)                                   (DistiLLM's SKL, α = 0: kl)
  skew_reverse_kl  KL(P_S ‖ α·P_S + (1−α)·P_T)                                   (DistiLLM's SRKL, α = 0: reverse_kl)
  tvd              ½·Σ |P_T − P_S|

Every row is multiplied by τ² (per row for a per-row τ), for every loss here, so that gradients keep their
scale as τ changes (Hinton); TRL and DistiLLM apply no τ², so at τ = 1 the values are theirs. The reduction is
Σ_rows τ²·D(row) / n, n = the number of valid rows (rows with mask ≠ 0, all rows without a mask) unless
`num_tokens` is given (the valid tokens of a whole optimizer step, so micro-batches weigh per token).

Memory: rows are processed `chunk_size` at a time, in the forward and again (recomputed) in the backward, so the
softened distributions of at most one chunk exist at once; the extra memory is one chunk's temporaries plus the
gradient of the logits itself. Half-precision logits are upcast per chunk; the loss is float32 (float64 inputs
stay float64). Teacher logits get a gradient only if they require one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .losses import LossInfo, ReductionError, Temperature, loss

TokenLossKind = Literal["kl", "reverse_kl", "jsd", "skew_kl", "skew_reverse_kl", "tvd"]
TOKEN_LOSS_KINDS: tuple[TokenLossKind, ...] = ("kl", "reverse_kl", "jsd", "skew_kl", "skew_reverse_kl", "tvd")

# a chunk holds about this many logits per side (4 MiB of float32; a chunk's forward and backward keep about 15
# such temporaries), so the row count adapts to the vocabulary: 32 rows at 32k
CHUNK_ELEMENTS = 1 << 20
DEFAULT_BETA = 0.5
DEFAULT_ALPHA = 0.1

__all__ = [
    "CHUNK_ELEMENTS",
    "LLM_LOSSES",
    "TOKEN_LOSS_KINDS",
    "token_divergence_rows",
    "token_jsd_loss",
    "token_kd_loss",
    "token_kl_loss",
    "token_reverse_kl_loss",
    "token_skew_kl_loss",
    "token_skew_reverse_kl_loss",
    "token_tvd_loss",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _up(x: Tensor) -> Tensor:
    return x.float() if x.dtype in _LOW_PRECISION else x


def _kl_terms(log_p: Tensor, log_q: Tensor, weight: Tensor | None) -> Tensor:
    """Σ w·p (log p − log q) over the last dim; 0·log 0 counts as 0 (with a zero, not NaN, gradient)."""
    p = log_p.exp()
    terms = p * torch.where(p > 0, log_p - log_q, torch.zeros_like(p))
    return (terms if weight is None else terms * weight).sum(-1)


def _log_mix(log_p: Tensor, log_q: Tensor, w: float) -> Tensor:
    """log(w·p + (1−w)·q) for 0 < w < 1."""
    return torch.logaddexp(log_p + math.log(w), log_q + math.log1p(-w))


def log_divergence_rows(
    kind: TokenLossKind, log_s: Tensor, log_t: Tensor, param: float, valid: Tensor | None = None
) -> Tensor:
    """D(row) from student and teacher log-probabilities over the same support (the last dim); `param` is β for
    jsd, α for the skew losses. `valid` (bool, same shape) marks the entries of a ragged support: the others are
    absent (they may hold −inf)."""
    weight: Tensor | None = None
    if valid is not None:
        # finite stand-ins for the absent entries keep every gradient finite; their terms are weighted by 0
        log_s = torch.where(valid, log_s, torch.zeros_like(log_s))
        log_t = torch.where(valid, log_t, torch.zeros_like(log_t))
        weight = valid.to(log_s.dtype)
    if kind == "tvd":
        diff = (log_t.exp() - log_s.exp()).abs()
        return 0.5 * (diff if weight is None else diff * weight).sum(-1)
    if kind == "kl" or (kind in ("jsd", "skew_kl") and param == 0.0):
        return _kl_terms(log_t, log_s, weight)
    if kind == "reverse_kl" or (kind == "jsd" and param == 1.0) or (kind == "skew_reverse_kl" and param == 0.0):
        return _kl_terms(log_s, log_t, weight)
    if kind == "jsd":
        log_m = _log_mix(log_t, log_s, param)
        return param * _kl_terms(log_t, log_m, weight) + (1.0 - param) * _kl_terms(log_s, log_m, weight)
    if kind in ("skew_kl", "skew_reverse_kl") and param >= 1.0:
        return torch.zeros_like(log_s[..., 0])
    if kind == "skew_kl":
        return _kl_terms(log_t, _log_mix(log_t, log_s, param), weight)
    if kind == "skew_reverse_kl":
        return _kl_terms(log_s, _log_mix(log_s, log_t, param), weight)
    raise ValueError(f"token loss: unknown kind {kind!r}; expected one of {', '.join(TOKEN_LOSS_KINDS)}")


def token_divergence_rows(kind: TokenLossKind, s: Tensor, t: Tensor, param: float) -> Tensor:
    """D(row) for already softened logits s = logits_S/τ, t = logits_T/τ (no τ², no reduction)."""
    if kind not in TOKEN_LOSS_KINDS:
        raise ValueError(f"token loss: unknown kind {kind!r}; expected one of {', '.join(TOKEN_LOSS_KINDS)}")
    return log_divergence_rows(kind, F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1), param)


# (τ of the chunk: a float or an (n, 1) tensor, then the chunk of each row tensor) → D per row
RowFn = Callable[..., Tensor]


class ChunkedRows(torch.autograd.Function):
    """row_fn over the rows `rows` of row-aligned tensors (N, ...), chunk by chunk; the backward recomputes each
    chunk with autograd, so no chunk's intermediates outlive it. Gradients flow to the tensors that need them."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, row_fn: RowFn, rows: Tensor, tau: Tensor | None, scalar_tau: float, chunk_rows: int, *tensors: Tensor
    ) -> Tensor:
        ctx.save_for_backward(rows, tau, *tensors)
        ctx.row_fn, ctx.scalar_tau, ctx.chunk_rows = row_fn, scalar_tau, chunk_rows
        out = torch.empty(rows.shape[0], dtype=_up(tensors[0][:0]).dtype, device=tensors[0].device)
        for start in range(0, rows.shape[0], chunk_rows):
            idx = rows[start : start + chunk_rows]
            tau_c = scalar_tau if tau is None else tau[start : start + chunk_rows].unsqueeze(-1)
            out[start : start + idx.shape[0]] = row_fn(tau_c, *(x.index_select(0, idx) for x in tensors))
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        rows, tau, *tensors = ctx.saved_tensors
        needs = ctx.needs_input_grad[5:]
        grads: list[Tensor | None] = [torch.zeros_like(x) if need else None for x, need in zip(tensors, needs)]
        for start in range(0, rows.shape[0], ctx.chunk_rows):
            idx = rows[start : start + ctx.chunk_rows]
            tau_c = ctx.scalar_tau if tau is None else tau[start : start + ctx.chunk_rows].unsqueeze(-1)
            with torch.enable_grad():
                chunks = [x.index_select(0, idx).detach().requires_grad_(need) for x, need in zip(tensors, needs)]
                value = ctx.row_fn(tau_c, *chunks)
                wrt = [c for c, need in zip(chunks, needs) if need]
                parts = iter(torch.autograd.grad(value, wrt, grad_out[start : start + idx.shape[0]]))
            for g in grads:
                if g is not None:
                    g.index_add_(0, idx, next(parts))
        return (None, None, None, None, None, *grads)


def selected_rows(name: str, logits: Tensor, mask: Tensor | None) -> Tensor:
    """Indices of the rows of logits.reshape(-1, V) that count: mask ≠ 0 (every row without a mask)."""
    if mask is None:
        return torch.arange(logits.numel() // max(logits.shape[-1], 1), device=logits.device)
    if mask.shape != logits.shape[:-1]:
        raise ReductionError(f"{name}: mask shape {tuple(mask.shape)} != logits rows {tuple(logits.shape[:-1])}")
    return (mask.reshape(-1) != 0).nonzero().squeeze(-1).to(logits.device)


def row_temperatures(name: str, temperature: Temperature, logits: Tensor, rows: Tensor) -> tuple[Tensor | None, float]:
    """(τ of each selected row, or None) and the scalar τ (used when the first is None)."""
    if isinstance(temperature, Tensor) and temperature.dim() > 0:
        if temperature.shape != logits.shape[:-1]:
            raise ReductionError(
                f"{name}: temperature shape {tuple(temperature.shape)} != logits rows {tuple(logits.shape[:-1])}"
            )
        tau = _up(temperature.detach()).reshape(-1).index_select(0, rows)
        return tau.to(_up(logits[:0]).dtype), 1.0
    return None, float(temperature)


def reduce_rows(
    name: str, per_row: Tensor, tau: Tensor | None, scalar_tau: float, num_tokens: float | Tensor | None
) -> Tensor:
    """Σ τ²·D(row) / (num_tokens or the number of rows)."""
    scaled = per_row * (tau * tau if tau is not None else scalar_tau * scalar_tau)
    if num_tokens is None:
        return scaled.sum() / float(max(per_row.shape[0], 1))
    if not isinstance(num_tokens, Tensor) and num_tokens <= 0:
        raise ValueError(f"{name}: num_tokens must be positive, got {num_tokens}")
    return scaled.sum() / num_tokens


def chunk_rows_for(name: str, chunk_size: int | None, vocab: int) -> int:
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"{name}: chunk_size must be a positive number of rows, got {chunk_size}")
    return chunk_size if chunk_size is not None else max(1, CHUNK_ELEMENTS // max(vocab, 1))


def _check_param(kind: TokenLossKind, beta: float, alpha: float) -> float:
    if kind == "jsd":
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"token_jsd: beta must be in [0, 1] (0: forward KL, 1: reverse KL), got {beta}")
        return float(beta)
    if kind in ("skew_kl", "skew_reverse_kl"):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"token_{kind}: alpha must be in [0, 1] (DistiLLM uses 0.1), got {alpha}")
        return float(alpha)
    return 0.0


def _flat_rows(logits: Tensor) -> Tensor:
    # reshape of a contiguous tensor is a view: no copy of the logits
    return logits.reshape(-1, logits.shape[-1])


def token_kd_loss(
    kind: TokenLossKind,
    logits_S: Tensor,
    logits_T: Tensor,
    temperature: Temperature = 1.0,
    *,
    mask: Tensor | None = None,
    num_tokens: float | Tensor | None = None,
    beta: float = DEFAULT_BETA,
    alpha: float = DEFAULT_ALPHA,
    chunk_size: int | None = None,
) -> Tensor:
    """Σ_{rows with mask ≠ 0} τ²·D_kind(row) / (num_tokens or the number of those rows), chunked over rows.

    logits_S, logits_T: (..., V), equal shapes. temperature: a float, a 0-d tensor or one τ per row (shape
    logits.shape[:-1]; treated as a constant). mask: logits.shape[:-1], nonzero = the row counts. chunk_size: rows
    per chunk (default: CHUNK_ELEMENTS // V). Returns 0 (with a gradient path) when no row is valid.
    """
    name = f"token_{kind}"
    if kind not in TOKEN_LOSS_KINDS:
        raise ValueError(f"token loss: unknown kind {kind!r}; expected one of {', '.join(TOKEN_LOSS_KINDS)}")
    if logits_S.shape != logits_T.shape:
        raise ReductionError(
            f"{name}: student logits shape {tuple(logits_S.shape)} != teacher shape {tuple(logits_T.shape)}"
        )
    param = _check_param(kind, beta, alpha)
    rows = selected_rows(name, logits_S, mask)
    tau, scalar_tau = row_temperatures(name, temperature, logits_S, rows)
    chunk = chunk_rows_for(name, chunk_size, logits_S.shape[-1])

    def row_fn(tau_c: float | Tensor, s: Tensor, t: Tensor) -> Tensor:
        return token_divergence_rows(kind, _up(s) / tau_c, _up(t) / tau_c, param)

    flat_S, flat_T = _flat_rows(logits_S), _flat_rows(logits_T)
    per_row: Tensor = ChunkedRows.apply(row_fn, rows, tau, scalar_tau, chunk, flat_S, flat_T)  # type: ignore[assignment]
    return reduce_rows(name, per_row, tau, scalar_tau, num_tokens)


@loss("token_kl", kind="kd")
def token_kl_loss(
    logits_S: Tensor, logits_T: Tensor, temperature: Temperature = 1.0, *, chunk_size: int | None = None
) -> Tensor:
    """Forward KL(P_T‖P_S) × τ² per row, mean over rows, chunked (equals 'kl')."""
    return token_kd_loss("kl", logits_S, logits_T, temperature, chunk_size=chunk_size)


@loss("token_reverse_kl", kind="kd")
def token_reverse_kl_loss(
    logits_S: Tensor, logits_T: Tensor, temperature: Temperature = 1.0, *, chunk_size: int | None = None
) -> Tensor:
    """Reverse KL(P_S‖P_T) × τ² per row, mean over rows, chunked (equals 'reverse_kl')."""
    return token_kd_loss("reverse_kl", logits_S, logits_T, temperature, chunk_size=chunk_size)


@loss("token_jsd", kind="kd")
def token_jsd_loss(
    logits_S: Tensor,
    logits_T: Tensor,
    temperature: Temperature = 1.0,
    *,
    beta: float = DEFAULT_BETA,
    chunk_size: int | None = None,
) -> Tensor:
    """Generalized JSD (TRL's β: 0 forward KL, 1 reverse KL) × τ² per row, mean over rows, chunked.

    At τ = 1 and β = 0.5 it equals 'jsd' (which has no τ² and gives 0 at β = 0 and 1).
    """
    return token_kd_loss("jsd", logits_S, logits_T, temperature, beta=beta, chunk_size=chunk_size)


@loss("token_skew_kl", kind="kd")
def token_skew_kl_loss(
    logits_S: Tensor,
    logits_T: Tensor,
    temperature: Temperature = 1.0,
    *,
    alpha: float = DEFAULT_ALPHA,
    chunk_size: int | None = None,
) -> Tensor:
    """Skew KL(P_T ‖ α·P_T + (1−α)·P_S) × τ² per row (DistiLLM, α = 0.1 by default), mean over rows, chunked."""
    return token_kd_loss("skew_kl", logits_S, logits_T, temperature, alpha=alpha, chunk_size=chunk_size)


@loss("token_skew_reverse_kl", kind="kd")
def token_skew_reverse_kl_loss(
    logits_S: Tensor,
    logits_T: Tensor,
    temperature: Temperature = 1.0,
    *,
    alpha: float = DEFAULT_ALPHA,
    chunk_size: int | None = None,
) -> Tensor:
    """Skew reverse KL(P_S ‖ α·P_S + (1−α)·P_T) × τ² per row (DistiLLM, α = 0.1), mean over rows, chunked."""
    return token_kd_loss("skew_reverse_kl", logits_S, logits_T, temperature, alpha=alpha, chunk_size=chunk_size)


@loss("token_tvd", kind="kd")
def token_tvd_loss(
    logits_S: Tensor, logits_T: Tensor, temperature: Temperature = 1.0, *, chunk_size: int | None = None
) -> Tensor:
    """Total variation ½·Σ|P_T − P_S| × τ² per row, mean over rows, chunked ('tvd' has no τ²)."""
    return token_kd_loss("tvd", logits_S, logits_T, temperature, chunk_size=chunk_size)


# the losses this module registers, in order: losses.json publishes them with the classic ones
LLM_LOSSES: tuple[LossInfo, ...] = tuple(
    info
    for fn in (
        token_kl_loss,
        token_reverse_kl_loss,
        token_jsd_loss,
        token_skew_kl_loss,
        token_skew_reverse_kl_loss,
        token_tvd_loss,
    )
    for info in fn.loss_info  # type: ignore[attr-defined]
)
