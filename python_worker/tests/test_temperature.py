"""Temperature functions against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from textbrewer_worker.losses import kd_ce_loss
from textbrewer_worker.training.temperature import build_temperature, constant, cwsm, flsw


def ref_flsw(s: np.ndarray, t: np.ndarray, base: float, beta: float, gamma: float, eps: float) -> np.ndarray:
    S, T = s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1])
    w = []
    for x, y in zip(S, T, strict=True):
        nx, ny = math.sqrt(sum(x * x)), math.sqrt(sum(y * y))
        dot = sum((a / (nx + eps)) * (b / (ny + eps)) for a, b in zip(x, y, strict=True))
        w.append((1 - dot) ** gamma)
    mean = sum(w) / len(w)
    return np.array([base + (mean - wi) * beta for wi in w]).reshape(s.shape[:-1])


def ref_cwsm(s: np.ndarray, base: float, beta: float) -> np.ndarray:
    S = s.reshape(-1, s.shape[-1])
    w = []
    for x in S:
        m = max(x)
        z = sum(math.exp(v - m) for v in x)
        w.append(1 / (1 / z + 1e-3))  # max softmax = exp(max − max)/z
    mean = sum(w) / len(w)
    return np.array([base + (mean - wi) * beta for wi in w]).reshape(s.shape[:-1])


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 6)])
def test_flsw(shape: tuple[int, ...]) -> None:
    g = np.random.default_rng(0)
    s, t = g.normal(0, 2, shape), g.normal(0, 2, shape)
    tau = flsw(torch.from_numpy(s), torch.from_numpy(t), 4.0, 1.5, 2.0)
    assert tau.shape == shape[:-1]
    np.testing.assert_allclose(tau.numpy(), ref_flsw(s, t, 4.0, 1.5, 2.0, 1e-4), rtol=1e-6, atol=1e-6)
    tau2 = flsw(torch.from_numpy(s), torch.from_numpy(t), 4.0, 0.5, 1.0, eps=0.1)
    np.testing.assert_allclose(tau2.numpy(), ref_flsw(s, t, 4.0, 0.5, 1.0, 0.1), rtol=1e-6, atol=1e-6)
    # the mean over all rows of τ is the base
    assert abs(float(tau.mean()) - 4.0) < 1e-9


def test_flsw_hand_example() -> None:
    # row 0: parallel vectors → w = (1 − ~1)^1 ≈ 0; row 1: orthogonal → w = 1; τ = T + (0.5 − w)·β
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    t = torch.tensor([[2.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    tau = flsw(s, t, 2.0, beta=1.0, gamma=1.0, eps=0.0)
    np.testing.assert_allclose(tau.numpy(), [2.5, 1.5], atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 6)])
def test_cwsm(shape: tuple[int, ...]) -> None:
    g = np.random.default_rng(1)
    s, t = g.normal(0, 2, shape), g.normal(0, 2, shape)
    tau = cwsm(torch.from_numpy(s), torch.from_numpy(t), 3.0, 0.7)
    assert tau.shape == shape[:-1]
    np.testing.assert_allclose(tau.numpy(), ref_cwsm(s, 3.0, 0.7), rtol=1e-6, atol=1e-6)


def test_cwsm_hand_example() -> None:
    # row 0 uniform over 2 → max p = 0.5, w = 1/0.501; row 1 one-hot-ish (max p ≈ 1) → w = 1/1.001
    s = torch.tensor([[0.0, 0.0], [100.0, 0.0]], dtype=torch.float64)
    tau = cwsm(s, s, 1.0, beta=2.0)
    w0, w1 = 1 / 0.501, 1 / 1.001
    mean = (w0 + w1) / 2
    np.testing.assert_allclose(tau.numpy(), [1.0 + (mean - w0) * 2, 1.0 + (mean - w1) * 2], atol=1e-12)


def test_temperatures_are_detached_and_upcast() -> None:
    s = torch.randn(3, 5, requires_grad=True)
    t = torch.randn(3, 5)
    assert not flsw(s, t, 2.0, 1.0, 1.0).requires_grad
    assert not cwsm(s, t, 2.0, 1.0).requires_grad
    assert flsw(s.detach().half(), t.half(), 2.0, 1.0, 1.0).dtype == torch.float32
    assert cwsm(s.detach().bfloat16(), t.bfloat16(), 2.0, 1.0).dtype == torch.float32


def test_constant_and_build() -> None:
    s, t = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    assert constant(s, t, 4.0) == 4.0
    assert build_temperature({"type": "none"})(s, t, 8.0) == 8.0
    assert build_temperature({"type": "constant"})(s, t, 8.0) == 8.0
    f = build_temperature({"type": "flsw", "beta": 1.0, "gamma": 2.0, "eps": 0.5})
    assert torch.equal(f(s, t, 4.0), flsw(s, t, 4.0, 1.0, 2.0, 0.5))
    f = build_temperature({"type": "cwsm", "beta": 0.3})
    assert torch.equal(f(s, t, 4.0), cwsm(s, t, 4.0, 0.3))


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": "linear"}, "unknown type"),
        ({}, "unknown type"),
        ({"type": "flsw", "beta": 1.0, "eps": 1e-4}, "missing gamma"),
        ({"type": "flsw", "beta": 1.0, "gamma": 1.0}, "missing eps"),
        ({"type": "cwsm", "beta": 1.0, "gamma": 2.0}, "unknown key"),
        ({"type": "cwsm", "beta": "1"}, "must be a number"),
    ],
)
def test_build_errors(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_temperature(spec)


def test_per_row_temperature_feeds_kd() -> None:
    g = np.random.default_rng(2)
    s, t = torch.from_numpy(g.normal(0, 2, (2, 3, 5))), torch.from_numpy(g.normal(0, 2, (2, 3, 5)))
    tau = build_temperature({"type": "flsw", "beta": 1.0, "gamma": 1.0, "eps": 1e-4})(s, t, 4.0)
    expected = 0.0
    for b in range(2):
        for i in range(3):
            x, y, T = s[b, i].numpy() / float(tau[b, i]), t[b, i].numpy() / float(tau[b, i]), float(tau[b, i])
            p = np.exp(y - y.max()) / np.exp(y - y.max()).sum()
            log_q = x - x.max() - math.log(np.exp(x - x.max()).sum())
            assert T > 0
            expected += -(p * log_q).sum()
    assert abs(float(kd_ce_loss(s, t, tau)) - expected / 6) < 1e-9
