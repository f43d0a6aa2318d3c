"""Distillation losses: TextBrewer's KD and matching losses plus KL, JSD, TVD and sparse top-k KD.

All functions are pure. Half-precision inputs (float16, bfloat16) are upcast and the loss is computed and
returned in float32; float32 and float64 inputs keep their dtype. "mean over rows" is the mean over every
leading dimension of the logits (B, or B*L for 3-D logits).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
Temperature = float | Tensor

__all__ = [
    "BUILTIN_LOSSES",
    "KD_LOSSES",
    "LOSS_INFO",
    "MATCH_LOSSES",
    "SPARSE_KD_LOSSES",
    "LossInfo",
    "ReductionError",
    "att_ce_loss",
    "att_ce_mean_loss",
    "att_mse_loss",
    "att_mse_sum_loss",
    "cos_loss",
    "fsp_loss",
    "get_loss",
    "get_sparse_kd_loss",
    "hid_mse_loss",
    "kd_ce_loss",
    "kd_jsd_loss",
    "kd_kl_loss",
    "kd_mse_loss",
    "kd_reverse_kl_loss",
    "kd_tvd_loss",
    "loss",
    "loss_info",
    "mmd_loss",
    "pkd_loss",
    "probability_shift_",
    "register_loss",
    "select_logits",
    "sparse_kd_loss",
    "sparse_kl_loss",
    "unregister_loss",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_Fn = TypeVar("_Fn", bound=Callable[..., torch.Tensor])


class ReductionError(ValueError):
    """Loss inputs whose shapes cannot be combined."""


# ---------------------------------------------------------------------------------------------------------
# helpers


def _up(x: Tensor) -> Tensor:
    return x.float() if x.dtype in _LOW_PRECISION else x


def _fmt(shape: Sequence[int]) -> str:
    return "(" + ",".join(str(d) for d in shape) + ")"


def _check_same(name: str, what: str, a: Tensor, b: Tensor, projectable: bool = False) -> None:
    if a.shape == b.shape:
        return
    msg = f"{name}: student {what} shape {_fmt(a.shape)} != teacher {_fmt(b.shape)}"
    if projectable and a.dim() == b.dim() and a.shape[:-1] == b.shape[:-1]:
        msg += f"; add a projection ['linear', {a.shape[-1]}, {b.shape[-1]}]"
    raise ReductionError(msg)


def _check_mask(name: str, mask: Tensor, feat: Tensor, length_dim: int = 1) -> None:
    if mask.dim() != 2 or feat.dim() < 2 or mask.shape != (feat.shape[0], feat.shape[length_dim]):
        raise ReductionError(
            f"{name}: mask shape {_fmt(mask.shape)} does not match feature shape {_fmt(feat.shape)}; "
            "expected (batch, length)"
        )


def _temperature(name: str, temperature: Temperature, logits: Tensor) -> float | Tensor:
    """A float, a 0-d tensor, or a per-row tensor of shape logits.shape[:-1] unsqueezed to (..., 1)."""
    if not isinstance(temperature, Tensor):
        return float(temperature)
    t = _up(temperature) if temperature.is_floating_point() else temperature.to(logits.dtype)
    if t.dim() == 0:
        return t
    if t.shape != logits.shape[:-1]:
        raise ReductionError(f"{name}: temperature shape {_fmt(t.shape)} != logits rows {_fmt(logits.shape[:-1])}")
    return t.unsqueeze(-1)


def _t_squared(t: float | Tensor) -> float | Tensor:
    if isinstance(t, Tensor) and t.dim() > 0:
        return (t * t).squeeze(-1)
    return t * t


def _kd_inputs(
    name: str, logits_S: Tensor, logits_T: Tensor, temperature: Temperature
) -> tuple[Tensor, Tensor, float | Tensor]:
    _check_same(name, "logits", logits_S, logits_T)
    s, t = _up(logits_S), _up(logits_T)
    tau = _temperature(name, temperature, s)
    return s / tau, t / tau, tau


def _kl_rows(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Σ p (log p − log q) over the last dim; 0·log 0 counts as 0."""
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)


# ---------------------------------------------------------------------------------------------------------
# the loss catalogue: every loss is registered with its metadata by the @loss decorator

LossKind = Literal["kd", "match"]
LayerForm = Literal["single", "pair"]
FEATURES = ("hidden", "attention")


@dataclass(frozen=True)
class LossInfo:
    """What the TypeScript config validation knows of a loss (losses.json holds the built-in ones)."""

    name: str
    kind: LossKind
    # match losses: one layer index ("single") or an [a, b] pair of layers ("pair"); None: either (kd: n/a)
    layers: LayerForm | None
    # the adaptor keys the loss reads
    features: tuple[str, ...]
    # whether the loss applies the mask it is given (matches: the student's inputs_mask; every match fn accepts
    # mask=, pkd ignores it)
    mask: bool


KD_LOSSES: dict[str, Callable[..., Tensor]] = {}
MATCH_LOSSES: dict[str, Callable[..., Tensor]] = {}
LOSS_INFO: dict[tuple[str, str], LossInfo] = {}
_REGISTRIES: dict[str, dict[str, Callable[..., Tensor]]] = {"kd": KD_LOSSES, "match": MATCH_LOSSES}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _registry(kind: str) -> dict[str, Callable[..., Tensor]]:
    if kind not in _REGISTRIES:
        raise ValueError(f"unknown loss kind {kind!r}; expected 'kd' or 'match'")
    return _REGISTRIES[kind]


def _check_signature(kind: str, name: str, fn: Callable[..., Tensor]) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins and some C callables have no signature to check
    try:
        if kind == "kd":
            sig.bind(None, None, None)
        else:
            sig.bind(None, None, mask=None)
    except TypeError as e:
        expected = "(logits_S, logits_T, temperature)" if kind == "kd" else "(feat_S, feat_T, mask=None)"
        raise ValueError(f"{kind} loss {name!r}: the function must take {expected}; {e}") from None


def register_loss(
    kind: LossKind,
    name: str,
    fn: Callable[..., Tensor],
    *,
    layers: LayerForm | None = None,
    features: Sequence[str] | None = None,
    mask: bool | None = None,
) -> LossInfo:
    """Add a loss: kd fns take (logits_S, logits_T, temperature), match fns (feat_S, feat_T, mask).

    Metadata defaults: kd losses read "logits" and take no mask; match losses accept either layer form, read
    hidden or attention features and take the mask.
    """
    registry = _registry(kind)
    if not callable(fn):
        raise ValueError(f"{kind} loss {name!r}: fn is not callable")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{kind} loss {name!r}: a name is letters, digits, '_', '.' or '-', starting with a letter")
    if name in registry:
        raise ValueError(f"{kind} loss {name!r} is already registered")
    if layers not in (None, "single", "pair") or (kind == "kd" and layers is not None):
        raise ValueError(f"{kind} loss {name!r}: layers must be 'single' or 'pair' (match losses only), got {layers!r}")
    default_features = ("logits",) if kind == "kd" else FEATURES
    feats = tuple(features) if features is not None else default_features
    if not feats or any(f not in default_features for f in feats):
        raise ValueError(f"{kind} loss {name!r}: features must be among {', '.join(default_features)}, got {feats}")
    _check_signature(kind, name, fn)
    info = LossInfo(name, kind, layers, feats, kind == "match" if mask is None else bool(mask))
    registry[name] = fn
    LOSS_INFO[(kind, name)] = info
    return info


def loss(
    *names: str,
    kind: LossKind,
    layers: LayerForm | None = None,
    features: Sequence[str] | None = None,
    mask: bool | None = None,
) -> Callable[[_Fn], _Fn]:
    """Registers the decorated function under each of `names` with its metadata (see register_loss)."""

    def register(fn: _Fn) -> _Fn:
        infos = [register_loss(kind, n, fn, layers=layers, features=features, mask=mask) for n in names]
        fn.loss_info = infos  # type: ignore[attr-defined]
        return fn

    return register


def unregister_loss(kind: LossKind, name: str) -> None:
    """Removes a registered loss (tests, and a user loss file imported again)."""
    _registry(kind).pop(name, None)
    LOSS_INFO.pop((kind, name), None)


def get_loss(kind: LossKind, name: str) -> Callable[..., Tensor]:
    """Look a loss up by name; an unknown name raises ValueError listing the known ones."""
    registry = _registry(kind)
    if name not in registry:
        raise ValueError(f"unknown {kind} loss {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]


def loss_info(kind: LossKind, name: str) -> LossInfo:
    get_loss(kind, name)
    return LOSS_INFO[(kind, name)]


# ---------------------------------------------------------------------------------------------------------
# KD losses: (logits_S, logits_T, temperature)


@loss("ce", kind="kd")
def kd_ce_loss(logits_S: Tensor, logits_T: Tensor, temperature: Temperature = 1.0) -> Tensor:
    """TextBrewer 'ce': −Σ softmax(t/T)·log_softmax(s/T), mean over rows, no T²."""
    s, t, _ = _kd_inputs("ce", logits_S, logits_T, temperature)
    return -(F.softmax(t, dim=-1) * F.log_softmax(s, dim=-1)).sum(-1).mean()


@loss("mse", kind="kd")
def kd_mse_loss(logits_S: Tensor, logits_T: Tensor, temperature: Temperature = 1.0) -> Tensor:
    """TextBrewer 'mse': mean((s/T − t/T)²) over all elements."""
    s, t, _ = _kd_inputs("mse", logits_S, logits_T, temperature)
    return F.mse_loss(s, t)


@loss("kl", kind="kd")
def kd_kl_loss(logits_S: Tensor, logits_T: Tensor, temperature: Temperature = 1.0) -> Tensor:
    """Forward KL(P_T‖P_S) on softened distributions, times T² (per row), mean over rows."""
    s, t, tau = _kd_inputs("kl", logits_S, logits_T, temperature)
    kl = _kl_rows(F.log_softmax(t, dim=-1), F.log_softmax(s, dim=-1))
    return (kl * _t_squared(tau)).mean()


@loss("reverse_kl", kind="kd")
def kd_reverse_kl_loss(logits_S: Tensor, logits_T: Tensor, temperature: Temperature = 1.0) -> Tensor:
    """Reverse KL(P_S‖P_T) on softened distributions, times T² (per row), mean over rows."""
    s, t, tau = _kd_inputs("reverse_kl", logits_S, logits_T, temperature)
    kl = _kl_rows(F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1))
    return (kl * _t_squared(tau)).mean()


@loss("jsd", kind="kd")
def kd_jsd_loss(logits_S: Tensor, logits_T: Tensor, temperature: Temperature = 1.0, *, beta: float = 0.5) -> Tensor:
    """Generalized JSD: β·KL(P_T‖M) + (1−β)·KL(P_S‖M), M = β·P_T + (1−β)·P_S; mean over rows.

    beta ∈ [0, 1]; 0.5 is the symmetric JSD (bounded by ln 2), 0 and 1 give 0. No T² factor. Use
    functools.partial(kd_jsd_loss, beta=...) to register another β.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"jsd: beta must be in [0, 1], got {beta}")
    s, t, _ = _kd_inputs("jsd", logits_S, logits_T, temperature)
    log_p_s, log_p_t = F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1)
    log_b = math.log(beta) if beta > 0 else -math.inf
    log_1mb = math.log1p(-beta) if beta < 1 else -math.inf
    log_m = torch.logaddexp(log_p_t + log_b, log_p_s + log_1mb)
    jsd = beta * _kl_rows(log_p_t, log_m) + (1.0 - beta) * _kl_rows(log_p_s, log_m)
    return jsd.mean()


@loss("tvd", kind="kd")
def kd_tvd_loss(logits_S: Tensor, logits_T: Tensor, temperature: Temperature = 1.0) -> Tensor:
    """Total variation distance 0.5·Σ|P_T − P_S| on softened distributions, mean over rows. No T²."""
    s, t, _ = _kd_inputs("tvd", logits_S, logits_T, temperature)
    return 0.5 * (F.softmax(t, dim=-1) - F.softmax(s, dim=-1)).abs().sum(-1).mean()


SparseTail = Literal["ignore", "uniform"]


def _check_topk_shapes(name: str, logits_S: Tensor, topk_logprobs_T: Tensor, topk_indices_T: Tensor) -> None:
    """Top-k teacher targets (..., k) fit student logits (..., V): same leading dims, k ≤ V, log-probs as indices."""
    if topk_logprobs_T.shape != topk_indices_T.shape:
        raise ReductionError(
            f"{name}: top-k log-probs shape {_fmt(topk_logprobs_T.shape)} != indices shape {_fmt(topk_indices_T.shape)}"
        )
    vocab, k = logits_S.shape[-1], topk_indices_T.shape[-1]
    if topk_indices_T.shape[:-1] != logits_S.shape[:-1] or k > vocab:
        raise ReductionError(
            f"{name}: student logits shape {_fmt(logits_S.shape)} does not fit teacher top-k shape "
            f"{_fmt(topk_indices_T.shape)}"
        )


def _sparse_inputs(
    name: str, logits_S: Tensor, topk_logprobs_T: Tensor, topk_indices_T: Tensor, temperature: Temperature, tail: str
) -> tuple[Tensor, Tensor, Tensor, float | Tensor]:
    """Checks the shapes; returns (log_softmax(s/T) over all V, the top-k indices as int64, the teacher's top-k
    log-probabilities in log q's dtype, τ)."""
    if tail not in ("ignore", "uniform"):
        raise ValueError(f"{name}: tail must be 'ignore' or 'uniform', got {tail!r}")
    _check_topk_shapes(name, logits_S, topk_logprobs_T, topk_indices_T)
    s = _up(logits_S)
    tau = _temperature(name, temperature, s)
    log_q = F.log_softmax(s / tau, dim=-1)
    return log_q, topk_indices_T.long(), _up(topk_logprobs_T).to(log_q.dtype), tau


def _outside_sum(log_q: Tensor, idx: Tensor) -> Tensor:
    """Σ_{j ∉ top-k} log q[j] per row."""
    outside = torch.ones_like(log_q, dtype=torch.bool).scatter_(-1, idx, False)
    # masked_fill rather than multiply: log q may be −inf outside the top-k
    return log_q.masked_fill(~outside, 0.0).sum(-1)


def sparse_kd_loss(
    logits_S: Tensor,
    topk_logprobs_T: Tensor,
    topk_indices_T: Tensor,
    temperature: Temperature = 1.0,
    tail: SparseTail = "ignore",
) -> Tensor:
    """Sparse 'ce': KD cross-entropy against a teacher known only by its top-k entries; mean over rows.

    topk_logprobs_T (..., k): the teacher's full-vocabulary log-probabilities at temperature T at the
    (distinct) indices topk_indices_T (..., k). The student uses log_softmax(s/T) over all V classes.
    With p_k = exp(topk_logprobs_T) and log q = log_softmax(s/T):
      tail="ignore":  −Σ_k (p_k/Σp) · log q[idx_k]            (top-k renormalised, tail dropped)
      tail="uniform": −Σ_k p_k · log q[idx_k] − (1−Σp)/(V−k) · Σ_{j∉topk} log q[j]
    With k = V both equal kd_ce_loss on the full teacher distribution. No T² factor.
    """
    log_q, idx, lp, _ = _sparse_inputs("sparse_kd", logits_S, topk_logprobs_T, topk_indices_T, temperature, tail)
    vocab, k = log_q.shape[-1], idx.shape[-1]
    log_q_k = log_q.gather(-1, idx)
    if tail == "ignore":
        return -(F.softmax(lp, dim=-1) * log_q_k).sum(-1).mean()
    p = lp.exp()
    loss = -(p * log_q_k).sum(-1)
    if vocab > k:
        tail_mass = (1.0 - p.sum(-1)).clamp_min(0.0)
        loss = loss - tail_mass / (vocab - k) * _outside_sum(log_q, idx)
    return loss.mean()


def sparse_kl_loss(
    logits_S: Tensor,
    topk_logprobs_T: Tensor,
    topk_indices_T: Tensor,
    temperature: Temperature = 1.0,
    tail: SparseTail = "ignore",
) -> Tensor:
    """Sparse 'kl': forward KL(P_T‖P_S) × T² (per row) against a teacher known only by its top-k entries.

    Inputs as sparse_kd_loss. The teacher distribution is completed by the same tail convention:
      tail="ignore":  P_T = p_k/Σp on the top-k, 0 elsewhere: Σ_k p̂_k (log p̂_k − log q[idx_k])
      tail="uniform": P_T = p_k on the top-k and u = (1−Σp)/(V−k) on each other class:
                      Σ_k p_k (log p_k − log q[idx_k]) + Σ_{j∉topk} u (log u − log q[j])
    The student's log q = log_softmax(s/T) is over all V classes. With k = V both equal kd_kl_loss.
    """
    log_q, idx, lp, tau = _sparse_inputs("sparse_kl", logits_S, topk_logprobs_T, topk_indices_T, temperature, tail)
    vocab, k = log_q.shape[-1], idx.shape[-1]
    log_q_k = log_q.gather(-1, idx)
    if tail == "ignore":
        kl = _kl_rows(F.log_softmax(lp, dim=-1), log_q_k)
    else:
        kl = _kl_rows(lp, log_q_k)
        if vocab > k:
            tail_mass = (1.0 - lp.exp().sum(-1)).clamp_min(0.0)
            u = tail_mass / (vocab - k)
            # (V−k)·u·log u = tail_mass·log u, and 0 when no mass is left
            kl = kl + torch.xlogy(tail_mass, u) - u * _outside_sum(log_q, idx)
    return (kl * _t_squared(tau)).mean()


# ---------------------------------------------------------------------------------------------------------
# matching losses: (feat_S, feat_T, mask=None); mask (B, L) is cast to the feature dtype (non-0/1 = weights)


def _zero_le(x: Tensor) -> Tensor:
    """Zero every element ≤ −1e-3 (neutralises −10000-masked pre-softmax scores)."""
    return torch.where(x <= -1e-3, torch.zeros_like(x), x)


def _heads(x: Tensor) -> Tensor:
    return x.unsqueeze(1) if x.dim() == 3 else x


def _att_mse(name: str, S: Tensor, T: Tensor, mask: Tensor | None) -> Tensor:
    """S, T: (B, H, L, L). Masked denominator H·Σ_b n_b²."""
    if mask is None:
        return F.mse_loss(_zero_le(S), _zero_le(T))
    _check_mask(name, mask, S, length_dim=-1)
    m = mask.to(S.dtype)
    valid = m.sum(-1).pow(2).sum() * S.shape[1]
    w = m[:, None, :, None] * m[:, None, None, :]
    return ((S - T).pow(2) * w).sum() / valid


def _att_ce(name: str, S: Tensor, T: Tensor, mask: Tensor | None) -> Tensor:
    """S, T: (B, H, L, L) raw scores; softmax over all keys. Masked denominator H·Σ_b n_b."""
    p_t = F.softmax(T, dim=-1)
    log_p_s = F.log_softmax(S, dim=-1)
    if mask is None:
        p_t = torch.where(T <= -1e-3, torch.zeros_like(p_t), p_t)
        return -(p_t * log_p_s).sum(-1).mean()
    _check_mask(name, mask, S, length_dim=-1)
    m = mask.to(S.dtype)
    rows = (p_t * log_p_s * m[:, None, None, :]).sum(-1)  # (B, H, L)
    return -(rows * m[:, None, :]).sum() / (m.sum() * S.shape[1])


def _att_inputs(name: str, feat_S: Tensor, feat_T: Tensor) -> tuple[Tensor, Tensor]:
    _check_same(name, "attention", feat_S, feat_T)
    if feat_S.dim() not in (3, 4):
        raise ReductionError(f"{name}: expected (B,H,L,L) or (B,L,L) attention, got {_fmt(feat_S.shape)}")
    return _up(feat_S), _up(feat_T)


@loss("attention_mse", kind="match", layers="single", features=["attention"])
def att_mse_loss(feat_S: Tensor, feat_T: Tensor, mask: Tensor | None = None) -> Tensor:
    """'attention_mse' on (B,H,L,L) (a 3-D input is one head); the masked form is in ``_att_mse``."""
    S, T = _att_inputs("attention_mse", feat_S, feat_T)
    return _att_mse("attention_mse", _heads(S), _heads(T), mask)


@loss("attention_mse_sum", kind="match", layers="single", features=["attention"])
def att_mse_sum_loss(feat_S: Tensor, feat_T: Tensor, mask: Tensor | None = None) -> Tensor:
    """'attention_mse_sum': a 4-D input is summed over heads, then attention_mse on (B,L,L)."""
    S, T = _att_inputs("attention_mse_sum", feat_S, feat_T)
    if S.dim() == 4:
        S, T = S.sum(1), T.sum(1)
    return _att_mse("attention_mse_sum", S.unsqueeze(1), T.unsqueeze(1), mask)


@loss("attention_ce", kind="match", layers="single", features=["attention"])
def att_ce_loss(feat_S: Tensor, feat_T: Tensor, mask: Tensor | None = None) -> Tensor:
    """'attention_ce' on (B,H,L,L) (a 3-D input is one head); the masked form is in ``_att_ce``."""
    S, T = _att_inputs("attention_ce", feat_S, feat_T)
    return _att_ce("attention_ce", _heads(S), _heads(T), mask)


@loss("attention_ce_mean", kind="match", layers="single", features=["attention"])
def att_ce_mean_loss(feat_S: Tensor, feat_T: Tensor, mask: Tensor | None = None) -> Tensor:
    """'attention_ce_mean': a 4-D input's raw scores are averaged over heads, then attention_ce."""
    S, T = _att_inputs("attention_ce_mean", feat_S, feat_T)
    if S.dim() == 4:
        S, T = S.mean(1), T.mean(1)
    return _att_ce("attention_ce_mean", S.unsqueeze(1), T.unsqueeze(1), mask)


@loss("hidden_mse", kind="match", layers="single", features=["hidden"])
def hid_mse_loss(feat_S: Tensor, feat_T: Tensor, mask: Tensor | None = None) -> Tensor:
    """'hidden_mse': mean((S−T)²); masked Σ(S−T)²·m / (Σm·D)."""
    _check_same("hidden_mse", "feature", feat_S, feat_T, projectable=True)
    S, T = _up(feat_S), _up(feat_T)
    if mask is None:
        return F.mse_loss(S, T)
    _check_mask("hidden_mse", mask, S)
    m = mask.to(S.dtype)
    return ((S - T).pow(2) * m.unsqueeze(-1)).sum() / (m.sum() * S.shape[-1])


@loss("cos", kind="match", layers="single", features=["hidden"])
def cos_loss(feat_S: Tensor, feat_T: Tensor, mask: Tensor | None = None) -> Tensor:
    """'cos': mean over rows (positions with mask ≠ 0) of 1 − cos, as cosine_embedding_loss(target=1)."""
    _check_same("cos", "feature", feat_S, feat_T, projectable=True)
    S, T = _up(feat_S), _up(feat_T)
    if mask is not None:
        _check_mask("cos", mask, S)
    S2, T2 = S.reshape(-1, S.shape[-1]), T.reshape(-1, T.shape[-1])
    eps = 1e-12
    cos = (S2 * T2).sum(-1) / ((S2.pow(2).sum(-1) + eps) * (T2.pow(2).sum(-1) + eps)).sqrt()
    per_row = 1.0 - cos
    if mask is None:
        return per_row.mean()
    # weighting by the binarised mask equals boolean selection, without a host sync
    keep = (mask.reshape(-1) != 0).to(per_row.dtype)
    return (per_row * keep).sum() / keep.sum()


@loss("pkd", kind="match", layers="single", features=["hidden"], mask=False)
def pkd_loss(feat_S: Tensor, feat_T: Tensor, mask: Tensor | None = None) -> Tensor:
    """'pkd': position 0 of 3-D inputs, L2-normalised (no eps); mean_b Σ_d (x̂_S − x̂_T)². Mask ignored."""
    S = _up(feat_S[:, 0] if feat_S.dim() == 3 else feat_S)
    T = _up(feat_T[:, 0] if feat_T.dim() == 3 else feat_T)
    _check_same("pkd", "feature", S, T, projectable=True)
    S = S / torch.norm(S, dim=1, keepdim=True)
    T = T / torch.norm(T, dim=1, keepdim=True)
    return (S - T).pow(2).sum(-1).mean()


def _pair(name: str, side: str, feats: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    if len(feats) != 2:
        raise ReductionError(f"{name}: {side} features must be a list of two tensors, got {len(feats)}")
    a, b = feats
    if a.dim() != 3 or b.dim() != 3 or a.shape[:2] != b.shape[:2]:
        raise ReductionError(
            f"{name}: {side} features must be two (B,L,D) tensors with equal B and L, "
            f"got {_fmt(a.shape)} and {_fmt(b.shape)}"
        )
    return _up(a), _up(b)


@loss("fsp", "gram", kind="match", layers="pair", features=["hidden"])
def fsp_loss(feat_S: Sequence[Tensor], feat_T: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    """'fsp'/'gram': G = AᵀB / L (masked: (A·m)ᵀ(B·m) / n_b) per side, mean((G_S − G_T)²)."""
    a_s, b_s = _pair("fsp", "student", feat_S)
    a_t, b_t = _pair("fsp", "teacher", feat_T)
    if a_s.shape[0] != a_t.shape[0] or (a_s.shape[-1], b_s.shape[-1]) != (a_t.shape[-1], b_t.shape[-1]):
        raise ReductionError(
            f"fsp: student features {_fmt(a_s.shape)}/{_fmt(b_s.shape)} and teacher {_fmt(a_t.shape)}/"
            f"{_fmt(b_t.shape)} need equal batch and hidden sizes; add a projection "
            f"['linear', {a_s.shape[-1]}, {a_t.shape[-1]}]"
        )
    if mask is None:
        g_s = torch.bmm(a_s.transpose(1, 2), b_s) / b_s.shape[1]
        g_t = torch.bmm(a_t.transpose(1, 2), b_t) / b_t.shape[1]
    else:
        _check_mask("fsp", mask, a_s)
        _check_mask("fsp", mask, a_t)
        m = mask.to(a_s.dtype).unsqueeze(-1)
        lengths = m.sum(1, keepdim=True)  # (B, 1, 1)
        g_s = torch.bmm((a_s * m).transpose(1, 2), b_s * m) / lengths
        g_t = torch.bmm((a_t * m).transpose(1, 2), b_t * m) / lengths
    return F.mse_loss(g_s, g_t)


@loss("mmd", "nst", kind="match", layers="pair", features=["hidden"])
def mmd_loss(
    feat_S: Sequence[Tensor],
    feat_T: Sequence[Tensor],
    mask: Tensor | None = None,
    *,
    masked_divisor: Literal["hidden", "length"] = "hidden",
) -> Tensor:
    """'mmd'/'nst': G = A·Bᵀ / D_own (B,L,L) per side; mean((G_S − G_T)²), masked Σ(ΔG)²·m_i·m_j / Σ_b n_b².

    masked_divisor="length" reproduces PyPI 0.2.1, whose masked branch divides G by L instead of D.
    """
    if masked_divisor not in ("hidden", "length"):
        raise ValueError(f"mmd: masked_divisor must be 'hidden' or 'length', got {masked_divisor!r}")
    a_s, b_s = _pair("mmd", "student", feat_S)
    a_t, b_t = _pair("mmd", "teacher", feat_T)
    for side, a, b in (("student", a_s, b_s), ("teacher", a_t, b_t)):
        if a.shape != b.shape:
            raise ReductionError(f"mmd: {side} features {_fmt(a.shape)} and {_fmt(b.shape)} differ in shape")
    if a_s.shape[:2] != a_t.shape[:2]:
        raise ReductionError(
            f"mmd: student features {_fmt(a_s.shape)} and teacher {_fmt(a_t.shape)} need equal batch and length"
        )
    by_length = mask is not None and masked_divisor == "length"
    g_s = torch.bmm(a_s, b_s.transpose(1, 2)) / (b_s.shape[1] if by_length else b_s.shape[2])
    g_t = torch.bmm(a_t, b_t.transpose(1, 2)) / (b_t.shape[1] if by_length else b_t.shape[2])
    if mask is None:
        return F.mse_loss(g_s, g_t)
    _check_mask("mmd", mask, a_s)
    m = mask.to(g_s.dtype)
    valid = m.sum(1).pow(2).sum()
    return ((g_s - g_t).pow(2) * m.unsqueeze(-1) * m.unsqueeze(1)).sum() / valid


# KD losses that can learn from top-k teacher targets (a top-k teacher cache): kdLossType → sparse form.
# The others need the teacher's full distribution (reverse_kl, jsd and tvd weigh the classes outside the
# top-k by the student; mse reads raw logits) and are refused with top-k targets.
SPARSE_KD_LOSSES: dict[str, Callable[..., Tensor]] = {"ce": sparse_kd_loss, "kl": sparse_kl_loss}


def get_sparse_kd_loss(name: str) -> Callable[..., Tensor]:
    """The sparse form of KD loss `name`; a loss without one raises ValueError naming the ones that have one."""
    if name not in SPARSE_KD_LOSSES:
        raise ValueError(
            f"kdLossType '{name}' cannot learn from top-k teacher targets (teacherCache.topK): it needs the "
            f"teacher's full distribution; use kdLossType {' or '.join(repr(n) for n in SPARSE_KD_LOSSES)}, "
            "or cache dense logits (teacherCache.topK: null)"
        )
    return SPARSE_KD_LOSSES[name]


# ---------------------------------------------------------------------------------------------------------
# helpers used by the distillers


def probability_shift_(logits: Tensor, labels: Tensor) -> Tensor:
    """In place: per row, swap the values at the argmax and at the gold label; returns `logits`.

    2-D logits (N, C) take labels (N,); 3-D logits (B, L, C) take labels (B, L). Rows with a label < 0
    are left unchanged (TextBrewer does so for 3-D; for 2-D it wraps or fails, which on CUDA would be a
    device-side assert, so 2-D follows the 3-D rule).
    """
    if logits.dim() not in (2, 3):
        raise ReductionError(f"probability_shift: expected 2-D or 3-D logits, got {_fmt(logits.shape)}")
    if labels.shape != logits.shape[:-1]:
        raise ReductionError(
            f"probability_shift: labels shape {_fmt(labels.shape)} != logits rows {_fmt(logits.shape[:-1])}"
        )
    arg = logits.argmax(dim=-1, keepdim=True)
    lab = labels.long().unsqueeze(-1)
    lab = torch.where(lab < 0, arg, lab)
    max_val = logits.gather(-1, arg)
    gold_val = logits.gather(-1, lab)
    logits.scatter_(-1, arg, gold_val)
    logits.scatter_(-1, lab, max_val)
    return logits


def select_logits(logits: Tensor, logits_mask: Tensor | None) -> Tensor:
    """3-D logits (B, L, C): keep rows with mask ≠ 0 in row-major order → (N, C). 2-D logits pass through."""
    if logits_mask is None or logits.dim() != 3:
        return logits
    if logits_mask.shape != logits.shape[:2]:
        raise ReductionError(f"logits_mask shape {_fmt(logits_mask.shape)} != logits rows {_fmt(logits.shape[:2])}")
    return logits[logits_mask != 0]


# every loss registered by this module, before any user loss: what losses.json publishes
BUILTIN_LOSSES: tuple[LossInfo, ...] = tuple(LOSS_INFO.values())
