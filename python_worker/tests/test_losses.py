"""Losses against independent float64 references written from the formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from textbrewer_worker import builtin_losses  # noqa: F401  (every built-in loss registered, whatever the test order)
from textbrewer_worker.losses import (
    KD_LOSSES,
    MATCH_LOSSES,
    SPARSE_KD_LOSSES,
    ReductionError,
    att_ce_loss,
    att_ce_mean_loss,
    att_mse_loss,
    att_mse_sum_loss,
    cos_loss,
    fsp_loss,
    get_loss,
    get_sparse_kd_loss,
    hid_mse_loss,
    kd_ce_loss,
    kd_jsd_loss,
    kd_kl_loss,
    kd_mse_loss,
    kd_reverse_kl_loss,
    kd_tvd_loss,
    mmd_loss,
    pkd_loss,
    probability_shift_,
    register_loss,
    select_logits,
    sparse_kd_loss,
    sparse_kl_loss,
    unregister_loss,
)

TOL = 1e-6

# mask with non-0/1 weights; batch 2, length 5
MASK = np.array([[1.0, 1.0, 0.5, 0.0, 0.0], [1.0, 2.0, 1.0, 1.0, 0.0]])


def close(actual: torch.Tensor | float, expected: float, tol: float = TOL) -> None:
    a = float(actual)
    assert math.isfinite(a), a
    assert abs(a - expected) <= tol * max(1.0, abs(expected)), (a, expected)


def t64(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------------------
# scalar references (pure Python / numpy on one row)


def log_softmax_row(x: np.ndarray) -> np.ndarray:
    m = max(x)
    lse = m + math.log(sum(math.exp(v - m) for v in x))
    return np.array([v - lse for v in x])


def softmax_row(x: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax_row(x))


def rows_of(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1])


def temps_of(temp: float | np.ndarray, n: int) -> np.ndarray:
    return np.full(n, float(temp)) if np.isscalar(temp) else np.asarray(temp, dtype=np.float64).reshape(-1)


def kl_row(p: np.ndarray, q: np.ndarray) -> float:
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q, strict=True) if pi > 0)


def ref_kd(kind: str, s: np.ndarray, t: np.ndarray, temp: float | np.ndarray, beta: float = 0.5) -> float:
    S, T = rows_of(s), rows_of(t)
    tau = temps_of(temp, len(S))
    if kind == "mse":
        return float(np.mean([((S[r] - T[r]) / tau[r]) ** 2 for r in range(len(S))]))
    total = 0.0
    for r in range(len(S)):
        p_t, p_s = softmax_row(T[r] / tau[r]), softmax_row(S[r] / tau[r])
        if kind == "ce":
            total += -sum(pt * math.log(ps) for pt, ps in zip(p_t, p_s, strict=True))
        elif kind == "kl":
            total += kl_row(p_t, p_s) * tau[r] ** 2
        elif kind == "reverse_kl":
            total += kl_row(p_s, p_t) * tau[r] ** 2
        elif kind == "jsd":
            m = beta * p_t + (1 - beta) * p_s
            total += beta * kl_row(p_t, m) + (1 - beta) * kl_row(p_s, m)
        elif kind == "tvd":
            total += 0.5 * sum(abs(a - b) for a, b in zip(p_t, p_s, strict=True))
    return total / len(S)


# ------------------------------------------------------------------------------------------------------
# KD losses

KD_FNS = {
    "ce": kd_ce_loss,
    "mse": kd_mse_loss,
    "kl": kd_kl_loss,
    "reverse_kl": kd_reverse_kl_loss,
    "jsd": kd_jsd_loss,
    "tvd": kd_tvd_loss,
}


@pytest.mark.parametrize("kind", list(KD_FNS))
@pytest.mark.parametrize("shape", [(4, 7), (2, 3, 7)])
@pytest.mark.parametrize("per_row", [False, True])
def test_kd_losses(kind: str, shape: tuple[int, ...], per_row: bool) -> None:
    g = rng(1)
    s, t = g.normal(0, 3, shape), g.normal(0, 3, shape)
    temp = g.uniform(0.5, 4.0, shape[:-1]) if per_row else 2.5
    temp_arg = t64(temp) if per_row else temp
    close(KD_FNS[kind](t64(s), t64(t), temp_arg), ref_kd(kind, s, t, temp))
    assert KD_LOSSES[kind] is KD_FNS[kind]


@pytest.mark.parametrize("kind", list(KD_FNS))
def test_kd_default_temperature_and_float32(kind: str) -> None:
    g = rng(2)
    s, t = g.normal(0, 2, (5, 6)).astype(np.float32), g.normal(0, 2, (5, 6)).astype(np.float32)
    out = KD_FNS[kind](torch.from_numpy(s), torch.from_numpy(t))
    assert out.dtype == torch.float32
    close(out, ref_kd(kind, s.astype(np.float64), t.astype(np.float64), 1.0))


@pytest.mark.parametrize("kind", list(KD_FNS))
def test_kd_half_precision_upcasts(kind: str) -> None:
    g = rng(3)
    s = torch.from_numpy(g.normal(0, 2, (3, 4, 9))).to(torch.bfloat16)
    t = torch.from_numpy(g.normal(0, 2, (3, 4, 9))).to(torch.bfloat16)
    out = KD_FNS[kind](s, t, 2.0)
    assert out.dtype == torch.float32
    close(out, ref_kd(kind, s.double().numpy(), t.double().numpy(), 2.0), tol=1e-5)


def test_kd_zero_dim_tensor_temperature() -> None:
    g = rng(4)
    s, t = g.normal(0, 2, (3, 5)), g.normal(0, 2, (3, 5))
    close(kd_ce_loss(t64(s), t64(t), torch.tensor(3.0)), ref_kd("ce", s, t, 3.0))


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_kd_jsd_beta(beta: float) -> None:
    g = rng(5)
    s, t = g.normal(0, 2, (2, 3, 6)), g.normal(0, 2, (2, 3, 6))
    close(kd_jsd_loss(t64(s), t64(t), 1.5, beta=beta), ref_kd("jsd", s, t, 1.5, beta=beta))


def test_kd_jsd_endpoints_and_bounds() -> None:
    g = rng(6)
    s, t = t64(g.normal(0, 2, (4, 6))), t64(g.normal(0, 2, (4, 6)))
    close(kd_jsd_loss(s, t, beta=0.0), 0.0)
    close(kd_jsd_loss(s, t, beta=1.0), 0.0)
    assert float(kd_jsd_loss(s, t)) <= math.log(2)
    with pytest.raises(ValueError, match="beta"):
        kd_jsd_loss(s, t, beta=1.5)


def test_kd_identical_inputs_are_zero_divergence() -> None:
    x = t64(rng(7).normal(0, 2, (3, 5)))
    for kind in ("mse", "kl", "reverse_kl", "jsd", "tvd"):
        close(KD_FNS[kind](x, x.clone(), 2.0), 0.0)


def test_kd_infinite_teacher_logits_stay_finite() -> None:
    s = t64(rng(8).normal(0, 1, (2, 4)))
    t = s.clone() + 0.3
    t[:, 1] = -math.inf
    # reverse KL is left out: KL(P_S‖P_T) is +inf when the teacher gives a class zero mass
    for kind in ("kl", "jsd", "tvd"):
        assert math.isfinite(float(KD_FNS[kind](s, t)))


def test_kd_shape_errors() -> None:
    with pytest.raises(ReductionError, match=r"ce: student logits shape \(2,5\) != teacher \(2,6\)"):
        kd_ce_loss(torch.zeros(2, 5), torch.zeros(2, 6))
    with pytest.raises(ReductionError, match="temperature shape"):
        kd_ce_loss(torch.zeros(2, 3, 5), torch.zeros(2, 3, 5), torch.ones(2))


# ------------------------------------------------------------------------------------------------------
# sparse top-k KD


def ref_sparse(s: np.ndarray, lp: np.ndarray, idx: np.ndarray, temp: float | np.ndarray, tail: str) -> float:
    S, LP, IDX = rows_of(s), rows_of(lp), rows_of(idx)
    tau = temps_of(temp, len(S))
    V, k = S.shape[-1], IDX.shape[-1]
    total = 0.0
    for r in range(len(S)):
        log_q = log_softmax_row(S[r] / tau[r])
        p = [math.exp(v) for v in LP[r]]
        if tail == "ignore":
            z = sum(p)
            total += -sum(p[i] / z * log_q[IDX[r, i]] for i in range(k))
        else:
            total += -sum(p[i] * log_q[IDX[r, i]] for i in range(k))
            rest = [j for j in range(V) if j not in set(IDX[r].tolist())]
            if rest:
                total += -(1 - sum(p)) / (V - k) * sum(log_q[j] for j in rest)
    return total / len(S)


def teacher_topk(t: np.ndarray, temp: float | np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    T = rows_of(t)
    tau = temps_of(temp, len(T))
    lps, idxs = [], []
    for r in range(len(T)):
        full = log_softmax_row(T[r] / tau[r])
        order = np.argsort(-full, kind="stable")[:k]
        idxs.append(order)
        lps.append(full[order])
    shape = t.shape[:-1] + (k,)
    return np.array(lps).reshape(shape), np.array(idxs, dtype=np.int64).reshape(shape)


@pytest.mark.parametrize("tail", ["ignore", "uniform"])
@pytest.mark.parametrize("shape", [(4, 10), (2, 3, 10)])
@pytest.mark.parametrize("per_row", [False, True])
def test_sparse_kd_topk(tail: str, shape: tuple[int, ...], per_row: bool) -> None:
    g = rng(10)
    s, t = g.normal(0, 2, shape), g.normal(0, 2, shape)
    temp = g.uniform(0.5, 3.0, shape[:-1]) if per_row else 2.0
    lp, idx = teacher_topk(t, temp, 4)
    out = sparse_kd_loss(t64(s), t64(lp), torch.from_numpy(idx), t64(temp) if per_row else temp, tail=tail)
    close(out, ref_sparse(s, lp, idx, temp, tail))


@pytest.mark.parametrize("tail", ["ignore", "uniform"])
@pytest.mark.parametrize("per_row", [False, True])
def test_sparse_kd_full_vocab_equals_kd_ce(tail: str, per_row: bool) -> None:
    g = rng(11)
    shape = (2, 3, 8)
    s, t = g.normal(0, 2, shape), g.normal(0, 2, shape)
    temp = g.uniform(0.5, 3.0, shape[:-1]) if per_row else 3.0
    lp, idx = teacher_topk(t, temp, shape[-1])
    temp_arg = t64(temp) if per_row else temp
    out = sparse_kd_loss(t64(s), t64(lp), torch.from_numpy(idx), temp_arg, tail=tail)
    close(out, float(kd_ce_loss(t64(s), t64(t), temp_arg)))
    close(out, ref_kd("ce", s, t, temp))


def test_sparse_kd_uniform_spreads_tail_mass() -> None:
    # student uniform over V: every log q = −log V, so the loss is log V whatever the teacher
    V = 6
    s = torch.zeros(3, V, dtype=torch.float64)
    lp, idx = teacher_topk(rng(12).normal(0, 2, (3, V)), 1.0, 2)
    for tail in ("ignore", "uniform"):
        close(sparse_kd_loss(s, t64(lp), torch.from_numpy(idx), tail=tail), math.log(V))


def test_sparse_kd_int32_indices_and_errors() -> None:
    g = rng(13)
    s, t = g.normal(0, 2, (3, 7)), g.normal(0, 2, (3, 7))
    lp, idx = teacher_topk(t, 1.0, 3)
    out = sparse_kd_loss(t64(s), t64(lp), torch.from_numpy(idx.astype(np.int32)), tail="uniform")
    close(out, ref_sparse(s, lp, idx, 1.0, "uniform"))
    with pytest.raises(ValueError, match="tail"):
        sparse_kd_loss(t64(s), t64(lp), torch.from_numpy(idx), tail="zero")  # type: ignore[arg-type]
    with pytest.raises(ReductionError, match="indices shape"):
        sparse_kd_loss(t64(s), t64(lp[:, :2]), torch.from_numpy(idx))
    with pytest.raises(ReductionError, match="does not fit"):
        sparse_kd_loss(t64(s[:2]), t64(lp), torch.from_numpy(idx))


def ref_sparse_kl(s: np.ndarray, lp: np.ndarray, idx: np.ndarray, temp: float | np.ndarray, tail: str) -> float:
    """KL(P_T‖P_S)·T² with P_T completed from its top-k: renormalised ("ignore") or the rest spread evenly."""
    S, LP, IDX = rows_of(s), rows_of(lp), rows_of(idx)
    tau = temps_of(temp, len(S))
    V, k = S.shape[-1], IDX.shape[-1]
    total = 0.0
    for r in range(len(S)):
        q = softmax_row(S[r] / tau[r])
        p_top = [math.exp(v) for v in LP[r]]
        p_full = np.zeros(V)
        if tail == "ignore":
            for i in range(k):
                p_full[IDX[r, i]] = p_top[i] / sum(p_top)
        else:
            p_full[:] = max(0.0, 1 - sum(p_top)) / (V - k) if V > k else 0.0
            for i in range(k):
                p_full[IDX[r, i]] = p_top[i]
        total += kl_row(p_full, q) * tau[r] ** 2
    return total / len(S)


@pytest.mark.parametrize("tail", ["ignore", "uniform"])
@pytest.mark.parametrize("shape", [(4, 10), (2, 3, 10)])
@pytest.mark.parametrize("per_row", [False, True])
def test_sparse_kl_topk(tail: str, shape: tuple[int, ...], per_row: bool) -> None:
    g = rng(14)
    s, t = g.normal(0, 2, shape), g.normal(0, 2, shape)
    temp = g.uniform(0.5, 3.0, shape[:-1]) if per_row else 2.0
    lp, idx = teacher_topk(t, temp, 4)
    out = sparse_kl_loss(t64(s), t64(lp), torch.from_numpy(idx), t64(temp) if per_row else temp, tail=tail)
    close(out, ref_sparse_kl(s, lp, idx, temp, tail))


@pytest.mark.parametrize("kind", ["ce", "kl"])
@pytest.mark.parametrize("tail", ["ignore", "uniform"])
@pytest.mark.parametrize("per_row", [False, True])
def test_sparse_losses_at_full_vocab_equal_the_dense_loss(kind: str, tail: str, per_row: bool) -> None:
    g = rng(15)
    shape = (2, 3, 8)
    s, t = g.normal(0, 2, shape), g.normal(0, 2, shape)
    temp = g.uniform(0.5, 3.0, shape[:-1]) if per_row else 2.0
    lp, idx = teacher_topk(t, temp, shape[-1])
    out = get_sparse_kd_loss(kind)(t64(s), t64(lp), torch.from_numpy(idx), t64(temp) if per_row else temp, tail=tail)
    close(out, ref_kd(kind, s, t, temp))


def test_sparse_kl_is_zero_for_the_teacher_itself_and_keeps_gradients() -> None:
    t = rng(16).normal(0, 2, (3, 6))
    lp, idx = teacher_topk(t, 2.0, 6)
    close(sparse_kl_loss(t64(t), t64(lp), torch.from_numpy(idx), 2.0, tail="uniform"), 0.0)
    s = t64(rng(17).normal(0, 2, (3, 6))).requires_grad_(True)
    lp3, idx3 = teacher_topk(t, 2.0, 3)
    sparse_kl_loss(s, t64(lp3), torch.from_numpy(idx3), 2.0, tail="uniform").backward()
    assert s.grad is not None and bool(torch.isfinite(s.grad).all()) and float(s.grad.abs().sum()) > 0


def test_sparse_kd_losses_registry_refuses_the_others() -> None:
    classic = {k: v for k, v in SPARSE_KD_LOSSES.items() if not k.startswith("token_")}
    assert classic == {"ce": sparse_kd_loss, "kl": sparse_kl_loss}
    assert sorted(SPARSE_KD_LOSSES) == ["ce", "kl", "token_jsd", "token_kl", "token_reverse_kl"]
    for kind in set(KD_LOSSES) - set(SPARSE_KD_LOSSES):
        with pytest.raises(ValueError, match=rf"kdLossType '{kind}' cannot learn from top-k.*teacherCache\.topK"):
            get_sparse_kd_loss(kind)


# ------------------------------------------------------------------------------------------------------
# attention losses


def attention_pair(seed: int, heads: int = 3, length: int = 5) -> tuple[np.ndarray, np.ndarray]:
    g = rng(seed)
    S, T = g.normal(0, 1, (2, heads, length, length)), g.normal(0, 1, (2, heads, length, length))
    # −10000-masked keys (pre-softmax scores), the exact −1e-3 edge, and a small negative that survives
    S[0, :, :, 4] = -10000.0
    T[0, :, :, 3:] = -10000.0
    T[1, 0, 0, 0] = -1e-3
    S[1, 1, 2, 2] = -1e-3
    S[1, 0, 1, 1] = -5e-4
    T[1, 2, 3, 1] = -9.99e-4
    return S, T


def zero_le(x: float) -> float:
    return 0.0 if x <= -1e-3 else x


def ref_att_mse(S: np.ndarray, T: np.ndarray, mask: np.ndarray | None) -> float:
    B, H, L, _ = S.shape
    num = 0.0
    for b in range(B):
        for h in range(H):
            for i in range(L):
                for j in range(L):
                    if mask is None:
                        num += (zero_le(S[b, h, i, j]) - zero_le(T[b, h, i, j])) ** 2
                    else:
                        num += (S[b, h, i, j] - T[b, h, i, j]) ** 2 * mask[b, i] * mask[b, j]
    if mask is None:
        return num / S.size
    return num / (H * sum(sum(mask[b]) ** 2 for b in range(B)))


def ref_att_ce(S: np.ndarray, T: np.ndarray, mask: np.ndarray | None) -> float:
    B, H, L, _ = S.shape
    total = 0.0
    for b in range(B):
        for h in range(H):
            for i in range(L):
                p_t, log_p_s = softmax_row(T[b, h, i]), log_softmax_row(S[b, h, i])
                if mask is None:
                    total += -sum(p_t[j] * log_p_s[j] for j in range(L) if T[b, h, i, j] > -1e-3)
                else:
                    total += -mask[b, i] * sum(mask[b, j] * p_t[j] * log_p_s[j] for j in range(L))
    if mask is None:
        return total / (B * H * L)
    return total / (H * mask.sum())


@pytest.mark.parametrize("masked", [False, True])
def test_att_mse(masked: bool) -> None:
    S, T = attention_pair(20)
    mask = MASK if masked else None
    close(att_mse_loss(t64(S), t64(T), None if mask is None else t64(mask)), ref_att_mse(S, T, mask))


def test_att_mse_zeroing_matters() -> None:
    S, T = attention_pair(21)
    zeroed = float(att_mse_loss(t64(S), t64(T)))
    raw = float(((t64(S) - t64(T)) ** 2).mean())
    assert zeroed < 1.0 < raw


@pytest.mark.parametrize("masked", [False, True])
def test_att_mse_sum(masked: bool) -> None:
    S, T = attention_pair(22)
    mask = MASK if masked else None
    m = None if mask is None else t64(mask)
    expected = ref_att_mse(S.sum(1, keepdims=True), T.sum(1, keepdims=True), mask)
    close(att_mse_sum_loss(t64(S), t64(T), m), expected)
    # a 3-D input is used as is
    close(att_mse_sum_loss(t64(S.sum(1)), t64(T.sum(1)), m), expected)


@pytest.mark.parametrize("masked", [False, True])
def test_att_ce(masked: bool) -> None:
    S, T = attention_pair(23)
    mask = MASK if masked else None
    close(att_ce_loss(t64(S), t64(T), None if mask is None else t64(mask)), ref_att_ce(S, T, mask))


@pytest.mark.parametrize("masked", [False, True])
def test_att_ce_mean(masked: bool) -> None:
    S, T = attention_pair(24)
    mask = MASK if masked else None
    m = None if mask is None else t64(mask)
    expected = ref_att_ce(S.mean(1, keepdims=True), T.mean(1, keepdims=True), mask)
    close(att_ce_mean_loss(t64(S), t64(T), m), expected)
    close(att_ce_mean_loss(t64(S.mean(1)), t64(T.mean(1)), m), expected)


def test_attention_float32_and_mask_dtype() -> None:
    S, T = attention_pair(25)
    S32, T32 = torch.from_numpy(S.astype(np.float32)), torch.from_numpy(T.astype(np.float32))
    bool_mask = torch.from_numpy(MASK != 0)
    binary = (MASK != 0).astype(np.float64)
    for fn, ref in ((att_mse_loss, ref_att_mse), (att_ce_loss, ref_att_ce)):
        out = fn(S32, T32, bool_mask)
        assert out.dtype == torch.float32
        close(out, ref(S.astype(np.float32).astype(np.float64), T.astype(np.float32).astype(np.float64), binary))


def test_attention_shape_error() -> None:
    with pytest.raises(ReductionError, match="attention_mse: student attention shape"):
        att_mse_loss(torch.zeros(2, 4, 5, 5), torch.zeros(2, 12, 5, 5))
    with pytest.raises(ReductionError, match="mask shape"):
        att_ce_loss(torch.zeros(2, 4, 5, 5), torch.zeros(2, 4, 5, 5), torch.ones(2, 6))


# ------------------------------------------------------------------------------------------------------
# hidden-state losses


def hidden_pair(seed: int, dim: int = 4) -> tuple[np.ndarray, np.ndarray]:
    g = rng(seed)
    return g.normal(0, 1, (2, 5, dim)), g.normal(0, 1, (2, 5, dim))


@pytest.mark.parametrize("masked", [False, True])
def test_hid_mse(masked: bool) -> None:
    S, T = hidden_pair(30)
    B, L, D = S.shape
    if masked:
        num = sum((S[b, i, d] - T[b, i, d]) ** 2 * MASK[b, i] for b in range(B) for i in range(L) for d in range(D))
        expected = num / (MASK.sum() * D)
        close(hid_mse_loss(t64(S), t64(T), t64(MASK)), expected)
    else:
        close(hid_mse_loss(t64(S), t64(T)), float(np.mean((S - T) ** 2)))


def test_hid_mse_float32() -> None:
    S, T = hidden_pair(31)
    S32, T32 = S.astype(np.float32), T.astype(np.float32)
    out = hid_mse_loss(torch.from_numpy(S32), torch.from_numpy(T32))
    close(out, float(np.mean((S32.astype(np.float64) - T32.astype(np.float64)) ** 2)))


def test_hid_mse_projection_hint() -> None:
    msg = (
        r"hidden_mse: student feature shape \(2,5,8\) != teacher \(2,5,16\); "
        r"add a projection \['linear', 8, 16\]"
    )
    with pytest.raises(ReductionError, match=msg):
        hid_mse_loss(torch.zeros(2, 5, 8), torch.zeros(2, 5, 16))
    with pytest.raises(ValueError):
        hid_mse_loss(torch.zeros(2, 5, 8), torch.zeros(2, 6, 8))


@pytest.mark.parametrize("masked", [False, True])
def test_cos(masked: bool) -> None:
    S, T = hidden_pair(32)
    S[1, 1] = 0.0  # a zero vector: cos = 0 thanks to the 1e-12 terms
    B, L, _ = S.shape
    vals = []
    for b in range(B):
        for i in range(L):
            if masked and MASK[b, i] == 0:
                continue
            x, y = S[b, i], T[b, i]
            dot = sum(x * y)
            vals.append(1 - dot / math.sqrt((sum(x * x) + 1e-12) * (sum(y * y) + 1e-12)))
    close(cos_loss(t64(S), t64(T), t64(MASK) if masked else None), sum(vals) / len(vals))


def test_pkd() -> None:
    S, T = hidden_pair(33)
    total = 0.0
    for b in range(S.shape[0]):
        x, y = S[b, 0], T[b, 0]
        x, y = x / math.sqrt(sum(x * x)), y / math.sqrt(sum(y * y))
        total += sum((x - y) ** 2)
    expected = total / S.shape[0]
    close(pkd_loss(t64(S), t64(T)), expected)
    close(pkd_loss(t64(S), t64(T), t64(MASK)), expected)  # the mask is ignored
    close(pkd_loss(t64(S[:, 0]), t64(T[:, 0])), expected)  # 2-D inputs are used as is


def ref_gram_fsp(A: np.ndarray, Bm: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    nb, L, Da = A.shape
    Db = Bm.shape[-1]
    G = np.zeros((nb, Da, Db))
    for b in range(nb):
        n_b = L if mask is None else sum(mask[b])
        for d in range(Da):
            for e in range(Db):
                w = [1.0] * L if mask is None else mask[b]
                G[b, d, e] = sum(A[b, i, d] * w[i] * Bm[b, i, e] * w[i] for i in range(L)) / n_b
    return G


@pytest.mark.parametrize("masked", [False, True])
def test_fsp(masked: bool) -> None:
    g = rng(34)
    A_s, B_s = g.normal(0, 1, (2, 5, 3)), g.normal(0, 1, (2, 5, 4))
    A_t, B_t = g.normal(0, 1, (2, 5, 3)), g.normal(0, 1, (2, 5, 4))
    mask = MASK if masked else None
    expected = float(np.mean((ref_gram_fsp(A_s, B_s, mask) - ref_gram_fsp(A_t, B_t, mask)) ** 2))
    m = None if mask is None else t64(mask)
    close(fsp_loss([t64(A_s), t64(B_s)], [t64(A_t), t64(B_t)], m), expected)
    assert MATCH_LOSSES["gram"] is fsp_loss and MATCH_LOSSES["fsp"] is fsp_loss


def test_fsp_errors() -> None:
    z = torch.zeros(2, 5, 3)
    with pytest.raises(ReductionError, match=r"add a projection \['linear', 3, 6\]"):
        fsp_loss([z, z], [torch.zeros(2, 5, 6), torch.zeros(2, 5, 6)])
    with pytest.raises(ReductionError, match="list of two"):
        fsp_loss([z], [z, z])


def ref_gram_mmd(A: np.ndarray, Bm: np.ndarray, divisor: float) -> np.ndarray:
    nb, L, D = A.shape
    G = np.zeros((nb, L, L))
    for b in range(nb):
        for i in range(L):
            for j in range(L):
                G[b, i, j] = sum(A[b, i, d] * Bm[b, j, d] for d in range(D)) / divisor
    return G


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("divisor", ["hidden", "length"])
def test_mmd(masked: bool, divisor: str) -> None:
    g = rng(35)
    A_s, B_s = g.normal(0, 1, (2, 5, 3)), g.normal(0, 1, (2, 5, 3))
    A_t, B_t = g.normal(0, 1, (2, 5, 6)), g.normal(0, 1, (2, 5, 6))  # hidden sizes may differ
    L = 5
    by_length = masked and divisor == "length"  # the PyPI divisor only applies to the masked branch
    G_s = ref_gram_mmd(A_s, B_s, L if by_length else 3)
    G_t = ref_gram_mmd(A_t, B_t, L if by_length else 6)
    if masked:
        num = sum(
            (G_s[b, i, j] - G_t[b, i, j]) ** 2 * MASK[b, i] * MASK[b, j]
            for b in range(2)
            for i in range(L)
            for j in range(L)
        )
        expected = num / sum(sum(MASK[b]) ** 2 for b in range(2))
    else:
        expected = float(np.mean((G_s - G_t) ** 2))
    out = mmd_loss([t64(A_s), t64(B_s)], [t64(A_t), t64(B_t)], t64(MASK) if masked else None, masked_divisor=divisor)
    close(out, expected)


def test_mmd_divisors_differ_and_default() -> None:
    g = rng(36)
    S = [t64(g.normal(0, 1, (2, 5, 3))) for _ in range(2)]
    T = [t64(g.normal(0, 1, (2, 5, 6))) for _ in range(2)]
    m = t64(MASK)
    hidden = float(mmd_loss(S, T, m))
    assert hidden == float(mmd_loss(S, T, m, masked_divisor="hidden"))
    assert abs(hidden - float(mmd_loss(S, T, m, masked_divisor="length"))) > 1e-3
    assert MATCH_LOSSES["nst"] is mmd_loss and MATCH_LOSSES["mmd"] is mmd_loss
    with pytest.raises(ValueError, match="masked_divisor"):
        mmd_loss(S, T, m, masked_divisor="width")  # type: ignore[arg-type]
    with pytest.raises(ReductionError, match="batch and length"):
        mmd_loss(S, [t64(g.normal(0, 1, (2, 4, 6))) for _ in range(2)])


# ------------------------------------------------------------------------------------------------------
# registries


def test_registries() -> None:
    token = {"token_kl", "token_reverse_kl", "token_jsd", "token_skew_kl", "token_skew_reverse_kl", "token_tvd"}
    assert set(KD_LOSSES) == {"ce", "mse", "kl", "reverse_kl", "jsd", "tvd", "uld"} | token
    assert set(MATCH_LOSSES) == {
        "attention_mse",
        "attention_mse_sum",
        "attention_ce",
        "attention_ce_mean",
        "hidden_mse",
        "cos",
        "pkd",
        "fsp",
        "gram",
        "mmd",
        "nst",
    }
    assert get_loss("match", "hidden_mse") is hid_mse_loss
    with pytest.raises(ValueError, match="'nope'"):
        get_loss("kd", "nope")


def test_register_loss() -> None:
    def bce(logits_S: torch.Tensor, logits_T: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits_S, torch.sigmoid(logits_T))

    try:
        register_loss("kd", "multi-label", bce)
        assert get_loss("kd", "multi-label") is bce
        with pytest.raises(ValueError, match="'multi-label'"):
            register_loss("kd", "multi-label", bce)
    finally:
        unregister_loss("kd", "multi-label")
    with pytest.raises(ValueError, match="'hidden_mse'"):
        register_loss("match", "hidden_mse", bce)
    with pytest.raises(ValueError, match="kind"):
        register_loss("other", "x", bce)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------
# probability shift and logits selection


def ref_shift(rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = rows.copy()
    for r in range(len(out)):
        lab = int(labels[r])
        if lab < 0:
            continue
        arg = int(np.argmax(rows[r]))
        out[r, arg], out[r, lab] = rows[r, lab], rows[r, arg]
    return out


def test_probability_shift_2d() -> None:
    x = rng(40).normal(0, 1, (5, 4))
    labels = np.array([0, 3, int(np.argmax(x[2])), -1, 2])
    logits = t64(x)
    out = probability_shift_(logits, torch.from_numpy(labels))
    assert out is logits
    np.testing.assert_array_equal(logits.numpy(), ref_shift(x, labels))
    np.testing.assert_array_equal(logits.numpy()[3], x[3])


def test_probability_shift_3d_negative_labels() -> None:
    x = rng(41).normal(0, 1, (2, 3, 6))
    labels = np.array([[1, -100, 5], [-1, 0, 2]])
    logits = t64(x)
    out = probability_shift_(logits, torch.from_numpy(labels))
    assert out is logits and out.shape == (2, 3, 6)
    expected = ref_shift(x.reshape(-1, 6), labels.reshape(-1)).reshape(2, 3, 6)
    np.testing.assert_array_equal(logits.numpy(), expected)
    np.testing.assert_array_equal(logits.numpy()[0, 1], x[0, 1])


def test_probability_shift_non_contiguous() -> None:
    x = rng(44).normal(0, 1, (4, 5))
    base = t64(x.T.copy())
    logits = base.t()  # (4, 5) view, not contiguous
    assert not logits.is_contiguous()
    labels = np.array([1, -2, 4, 0])
    probability_shift_(logits, torch.from_numpy(labels))
    np.testing.assert_array_equal(logits.numpy(), ref_shift(x, labels))


def test_probability_shift_errors() -> None:
    with pytest.raises(ReductionError, match="labels shape"):
        probability_shift_(torch.zeros(3, 4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ReductionError, match="2-D or 3-D"):
        probability_shift_(torch.zeros(4), torch.zeros(4, dtype=torch.long))


def test_select_logits() -> None:
    x = rng(42).normal(0, 1, (2, 5, 3))
    expected = np.array([x[b, i] for b in range(2) for i in range(5) if MASK[b, i] != 0])
    out = select_logits(t64(x), t64(MASK))
    np.testing.assert_array_equal(out.numpy(), expected)
    two_d = t64(x[0])
    assert select_logits(two_d, t64(MASK)) is two_d
    assert select_logits(two_d, None) is two_d
    with pytest.raises(ReductionError, match="logits_mask shape"):
        select_logits(t64(x), torch.ones(2, 4))


def test_select_then_kd_ce_counts_only_kept_rows() -> None:
    g = rng(43)
    s, t = g.normal(0, 2, (2, 5, 4)), g.normal(0, 2, (2, 5, 4))
    kept_s = np.array([s[b, i] for b in range(2) for i in range(5) if MASK[b, i] != 0])
    kept_t = np.array([t[b, i] for b in range(2) for i in range(5) if MASK[b, i] != 0])
    out = kd_ce_loss(select_logits(t64(s), t64(MASK)), select_logits(t64(t), t64(MASK)), 2.0)
    close(out, ref_kd("ce", kept_s, kept_t, 2.0))
