"""Token-level LLM losses: chunked values and gradients against float64 references written from the formulas."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from textbrewer_worker.builtin_losses import BUILTIN_LOSSES
from textbrewer_worker.llm_losses import (
    token_jsd_loss,
    token_kd_loss,
    token_kl_loss,
    token_reverse_kl_loss,
    token_tvd_loss,
)
from textbrewer_worker.losses import get_loss, kd_jsd_loss, kd_kl_loss, kd_reverse_kl_loss

Tensor = torch.Tensor


def kl(p: Tensor, q: Tensor) -> Tensor:
    """Σ p log(p/q) per row, 0·log 0 = 0 (float64 probabilities)."""
    return torch.where(p > 0, p * (p.log() - q.log()), torch.zeros_like(p)).sum(-1)


def reference(kind: str, s: Tensor, t: Tensor, tau: Tensor, param: float) -> Tensor:
    """Per-row τ²·D in float64, straight from the definitions (probabilities, no log-space tricks)."""
    p_s, p_t = torch.softmax(s / tau, -1), torch.softmax(t / tau, -1)
    if kind == "kl":
        d = kl(p_t, p_s)
    elif kind == "reverse_kl":
        d = kl(p_s, p_t)
    elif kind == "jsd":
        if param == 0.0:
            d = kl(p_t, p_s)
        elif param == 1.0:
            d = kl(p_s, p_t)
        else:
            m = param * p_t + (1 - param) * p_s
            d = param * kl(p_t, m) + (1 - param) * kl(p_s, m)
    elif kind == "skew_kl":
        d = kl(p_t, param * p_t + (1 - param) * p_s)
    elif kind == "skew_reverse_kl":
        d = kl(p_s, param * p_s + (1 - param) * p_t)
    else:
        d = 0.5 * (p_t - p_s).abs().sum(-1)
    return d * tau.squeeze(-1) ** 2


CASES = [
    ("kl", 0.0),
    ("reverse_kl", 0.0),
    ("jsd", 0.0),
    ("jsd", 0.1),
    ("jsd", 0.5),
    ("jsd", 0.9),
    ("jsd", 1.0),
    ("skew_kl", 0.1),
    ("skew_kl", 0.5),
    ("skew_reverse_kl", 0.1),
    ("skew_reverse_kl", 0.7),
    ("tvd", 0.0),
]


def inputs(seed: int, shape: tuple[int, ...] = (3, 7, 50)) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    t = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    mask = torch.rand(shape[:-1], generator=g) > 0.3
    return s, t, mask


def run(kind: str, param: float, s: Tensor, t: Tensor, tau: float | Tensor, **kw: object) -> Tensor:
    return token_kd_loss(kind, s, t, tau, beta=param, alpha=param, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("per_row_tau", [False, True])
@pytest.mark.parametrize(("kind", "param"), CASES)
def test_value_and_gradients_equal_the_float64_reference(kind: str, param: float, per_row_tau: bool) -> None:
    s, t, mask = inputs(1)
    tau = torch.rand(s.shape[:-1], dtype=torch.float64) * 2 + 0.5 if per_row_tau else torch.tensor(2.0).double()
    s1, t1 = s.clone().requires_grad_(), t.clone().requires_grad_()
    got = run(kind, param, s1, t1, tau if per_row_tau else 2.0, mask=mask, chunk_size=4)
    got.backward()
    s2, t2 = s.clone().requires_grad_(), t.clone().requires_grad_()
    tau_r = tau.unsqueeze(-1) if per_row_tau else tau
    rows = reference(kind, s2, t2, tau_r.expand(*s.shape[:-1], 1) if per_row_tau else tau_r.reshape(1, 1, 1), param)
    want = rows[mask].sum() / mask.sum()
    want.backward()
    assert got.item() == pytest.approx(want.item(), abs=1e-6, rel=1e-6)
    assert s1.grad is not None and t1.grad is not None
    torch.testing.assert_close(s1.grad, s2.grad, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(t1.grad, t2.grad, atol=1e-6, rtol=1e-6)
    # masked rows get no gradient
    assert s1.grad[~mask].abs().max().item() == 0.0


@pytest.mark.parametrize(("kind", "param"), CASES)
def test_chunked_equals_unchunked(kind: str, param: float) -> None:
    s, t, mask = inputs(2, (4, 9, 33))
    results = []
    for chunk in (1, 5, 36, None):
        x = s.clone().requires_grad_()
        value = run(kind, param, x, t, 1.5, mask=mask, chunk_size=chunk)
        value.backward()
        results.append((value.detach(), x.grad))
    for value, grad in results[1:]:
        torch.testing.assert_close(value, results[0][0], atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(grad, results[0][1], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize(("kind", "param"), [c for c in CASES if c[0] != "tvd"])
def test_gradcheck_of_the_chunked_backward(kind: str, param: float) -> None:
    s, t, mask = inputs(3, (2, 3, 6))
    s.requires_grad_()
    t.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: run(kind, param, a, b, 1.3, mask=mask, chunk_size=2), (s, t))


def test_half_precision_is_upcast_per_chunk_and_float32_matches_float64() -> None:
    s, t, _ = inputs(4, (2, 5, 300))
    ref = token_kl_loss(s, t, 2.0)
    assert token_kl_loss(s.float(), t.float(), 2.0, chunk_size=3).dtype == torch.float32
    assert token_kl_loss(s.float(), t.float(), 2.0, chunk_size=3).item() == pytest.approx(ref.item(), rel=1e-5)
    half = token_kl_loss(s.bfloat16(), t.bfloat16(), 2.0, chunk_size=3)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(
        token_kl_loss(s.bfloat16().double(), t.bfloat16().double(), 2.0).item(), rel=1e-5
    )


@pytest.mark.parametrize(
    ("token_fn", "classic", "t_squared"),
    [(token_kl_loss, kd_kl_loss, True), (token_reverse_kl_loss, kd_reverse_kl_loss, True)],
)
def test_registered_forms_equal_the_classic_losses(
    token_fn: Callable[..., Tensor], classic: Callable[..., Tensor], t_squared: bool
) -> None:
    s, t, _ = inputs(5, (2, 4, 40))
    assert token_fn(s, t, 2.5, chunk_size=3).item() == pytest.approx(classic(s, t, 2.5).item(), abs=1e-12)


def test_jsd_at_half_and_unit_temperature_is_the_classic_jsd_and_tvd_gets_t_squared() -> None:
    s, t, _ = inputs(6, (2, 4, 40))
    assert token_jsd_loss(s, t, 1.0).item() == pytest.approx(kd_jsd_loss(s, t, 1.0).item(), abs=1e-12)
    assert token_jsd_loss(s, t, 2.0).item() == pytest.approx(4 * kd_jsd_loss(s, t, 2.0).item(), abs=1e-12)
    # TRL's β: 0 is forward KL and 1 reverse KL, where the classic jsd gives 0
    assert token_jsd_loss(s, t, 1.0, beta=0.0).item() == pytest.approx(kd_kl_loss(s, t).item(), abs=1e-12)
    assert token_jsd_loss(s, t, 1.0, beta=1.0).item() == pytest.approx(kd_reverse_kl_loss(s, t).item(), abs=1e-12)
    assert kd_jsd_loss(s, t, 1.0, beta=0.0).item() == 0.0
    p = (torch.softmax(t / 3, -1) - torch.softmax(s / 3, -1)).abs().sum(-1).mean() * 0.5 * 9
    assert token_tvd_loss(s, t, 3.0).item() == pytest.approx(p.item(), abs=1e-12)


def test_num_tokens_sets_the_denominator_and_an_empty_mask_gives_zero() -> None:
    s, t, mask = inputs(7)
    total = token_kd_loss("kl", s, t, 1.0, mask=mask, num_tokens=1)
    mean = token_kd_loss("kl", s, t, 1.0, mask=mask)
    assert total.item() == pytest.approx(mean.item() * int(mask.sum()), rel=1e-12)
    x = s.clone().requires_grad_()
    empty = token_kd_loss("kl", x, t, 1.0, mask=torch.zeros_like(mask))
    empty.backward()
    assert empty.item() == 0.0 and x.grad is not None and x.grad.abs().max().item() == 0.0


def test_bad_inputs_are_refused_naming_the_field() -> None:
    s, t, mask = inputs(8)
    with pytest.raises(ValueError, match=r"token_jsd: beta must be in \[0, 1\].*got 1.5"):
        token_kd_loss("jsd", s, t, beta=1.5)
    with pytest.raises(ValueError, match="alpha must be in"):
        token_kd_loss("skew_kl", s, t, alpha=-0.1)
    with pytest.raises(ValueError, match="mask shape"):
        token_kd_loss("kl", s, t, mask=mask[:, :3])
    with pytest.raises(ValueError, match="student logits shape"):
        token_kd_loss("kl", s, t[..., :10])
    with pytest.raises(ValueError, match="chunk_size must be a positive"):
        token_kd_loss("kl", s, t, chunk_size=0)
    with pytest.raises(ValueError, match="unknown kind 'kll'"):
        token_kd_loss("kll", s, t)  # type: ignore[arg-type]


def test_the_token_losses_are_built_in_kd_losses() -> None:
    names = {i.name for i in BUILTIN_LOSSES if i.kind == "kd"}
    for name in ("token_kl", "token_reverse_kl", "token_jsd", "token_skew_kl", "token_skew_reverse_kl", "token_tvd"):
        assert name in names
        get_loss("kd", name)
