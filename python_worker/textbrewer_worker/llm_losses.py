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
from dataclasses import dataclass
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


def _kl_rows(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Σ p (log p − log q) over the last dim; 0·log 0 counts as 0."""
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)


def _log_mix(log_p: Tensor, log_q: Tensor, w: float) -> Tensor:
    """log(w·p + (1−w)·q) for 0 < w < 1."""
    return torch.logaddexp(log_p + math.log(w), log_q + math.log1p(-w))


def token_divergence_rows(kind: TokenLossKind, s: Tensor, t: Tensor, param: float) -> Tensor:
    """D(row) for already softened logits s = logits_S/τ, t = logits_T/τ (no τ², no reduction); `param` is β for
    jsd, α for the skew losses, unused otherwise."""
    if kind == "tvd":
        return 0.5 * (F.softmax(t, dim=-1) - F.softmax(s, dim=-1)).abs().sum(-1)
    log_s, log_t = F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1)
    if kind == "kl" or (kind == "jsd" and param == 0.0) or (kind == "skew_kl" and param == 0.0):
        return _kl_rows(log_t, log_s)
    if kind == "reverse_kl" or (kind == "jsd" and param == 1.0) or (kind == "skew_reverse_kl" and param == 0.0):
        return _kl_rows(log_s, log_t)
    if kind == "jsd":
        log_m = _log_mix(log_t, log_s, param)
        return param * _kl_rows(log_t, log_m) + (1.0 - param) * _kl_rows(log_s, log_m)
    if kind == "skew_kl":
        return _kl_rows(log_t, _log_mix(log_t, log_s, param)) if param < 1.0 else torch.zeros_like(log_t[..., 0])
    if kind == "skew_reverse_kl":
        return _kl_rows(log_s, _log_mix(log_s, log_t, param)) if param < 1.0 else torch.zeros_like(log_s[..., 0])
    raise ValueError(f"token loss: unknown kind {kind!r}; expected one of {', '.join(TOKEN_LOSS_KINDS)}")


@dataclass(frozen=True)
class _Spec:
    kind: TokenLossKind
    param: float
    chunk_rows: int


def _chunk_rows(s: Tensor, t: Tensor, tau: float | Tensor, spec: _Spec) -> Tensor:
    s, t = _up(s), _up(t)
    return token_divergence_rows(spec.kind, s / tau, t / tau, spec.param)


class _ChunkedDivergence(torch.autograd.Function):
    """D(row) for the rows `rows` of (N, V) logits, chunk by chunk; the backward recomputes each chunk."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, logits_S: Tensor, logits_T: Tensor, rows: Tensor, tau: Tensor | None, scalar_tau: float, spec: _Spec
    ) -> Tensor:
        ctx.save_for_backward(logits_S, logits_T, rows, tau)
        ctx.scalar_tau, ctx.spec = scalar_tau, spec
        dtype = _up(logits_S[:0]).dtype
        out = torch.empty(rows.shape[0], dtype=dtype, device=logits_S.device)
        for start in range(0, rows.shape[0], spec.chunk_rows):
            idx = rows[start : start + spec.chunk_rows]
            tau_c = scalar_tau if tau is None else tau[start : start + spec.chunk_rows].unsqueeze(-1)
            out[start : start + idx.shape[0]] = _chunk_rows(
                logits_S.index_select(0, idx), logits_T.index_select(0, idx), tau_c, spec
            )
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        logits_S, logits_T, rows, tau = ctx.saved_tensors
        spec: _Spec = ctx.spec
        need_S, need_T = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_S = torch.zeros_like(logits_S) if need_S else None
        grad_T = torch.zeros_like(logits_T) if need_T else None
        for start in range(0, rows.shape[0], spec.chunk_rows):
            idx = rows[start : start + spec.chunk_rows]
            tau_c = ctx.scalar_tau if tau is None else tau[start : start + spec.chunk_rows].unsqueeze(-1)
            with torch.enable_grad():
                s = logits_S.index_select(0, idx).detach().requires_grad_(need_S)
                t = logits_T.index_select(0, idx).detach().requires_grad_(need_T)
                value = _chunk_rows(s, t, tau_c, spec)
                wrt = [x for x, need in ((s, need_S), (t, need_T)) if need]
                grads = torch.autograd.grad(value, wrt, grad_out[start : start + idx.shape[0]])
            it = iter(grads)
            if grad_S is not None:
                grad_S.index_add_(0, idx, next(it))
            if grad_T is not None:
                grad_T.index_add_(0, idx, next(it))
        return grad_S, grad_T, None, None, None, None


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
    vocab = logits_S.shape[-1]
    flat_S, flat_T = _flat_rows(logits_S), _flat_rows(logits_T)
    n_rows = flat_S.shape[0]
    if mask is None:
        rows = torch.arange(n_rows, device=flat_S.device)
    else:
        if mask.shape != logits_S.shape[:-1]:
            raise ReductionError(f"{name}: mask shape {tuple(mask.shape)} != logits rows {tuple(logits_S.shape[:-1])}")
        rows = (mask.reshape(-1) != 0).nonzero().squeeze(-1)
    tau_rows: Tensor | None = None
    scalar_tau = 1.0
    if isinstance(temperature, Tensor) and temperature.dim() > 0:
        if temperature.shape != logits_S.shape[:-1]:
            raise ReductionError(
                f"{name}: temperature shape {tuple(temperature.shape)} != logits rows {tuple(logits_S.shape[:-1])}"
            )
        tau_rows = _up(temperature.detach()).reshape(-1).index_select(0, rows)
        tau_rows = tau_rows.to(_up(flat_S[:0]).dtype)
    else:
        scalar_tau = float(temperature)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"{name}: chunk_size must be a positive number of rows, got {chunk_size}")
    chunk = chunk_size if chunk_size is not None else max(1, CHUNK_ELEMENTS // max(vocab, 1))
    spec = _Spec(kind, param, chunk)
    per_row: Tensor = _ChunkedDivergence.apply(flat_S, flat_T, rows, tau_rows, scalar_tau, spec)  # type: ignore[assignment]
    scaled = per_row * (tau_rows * tau_rows if tau_rows is not None else scalar_tau * scalar_tau)
    if num_tokens is None:
        denominator: float | Tensor = float(max(rows.shape[0], 1))
    else:
        denominator = num_tokens
        if not isinstance(denominator, Tensor) and denominator <= 0:
            raise ValueError(f"{name}: num_tokens must be positive, got {num_tokens}")
    return scaled.sum() / denominator


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
