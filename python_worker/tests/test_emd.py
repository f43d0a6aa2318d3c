"""BERT-EMD against a cost matrix rebuilt from the formula and an independent LP solve."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from scipy.optimize import linprog
from torch import nn

from textbrewer_worker.emd import (
    EMBEDDING_LOG_NAME,
    EMD_LOG_NAME,
    emd_loss,
    emd_projections,
    transport_flow,
)
from textbrewer_worker.losses import ReductionError

B, L, D = 2, 5, 8
LS, LT = 2, 4


def _mask() -> torch.Tensor:
    m = torch.ones(B, L)
    m[0, 3:] = 0  # padding in the first sequence
    m[1, 4:] = 0
    return m


def _hidden(n_layers: int, dim: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, L, dim, generator=g, dtype=torch.float64) for _ in range(n_layers + 1)]


def _ref_mse(s: np.ndarray, t: np.ndarray, mask: np.ndarray | None) -> float:
    """Σ(S−T)²·m / (Σm·D), or the plain mean without a mask."""
    sq = (s - t) ** 2
    if mask is None:
        return float(sq.mean())
    return float((sq * mask[..., None]).sum() / (mask.sum() * s.shape[-1]))


def _ref_cost(hs: list[np.ndarray], ht: list[np.ndarray], mask: np.ndarray | None) -> np.ndarray:
    ns, nt = len(hs) - 1, len(ht) - 1
    c = np.zeros((ns + nt, ns + nt))
    for s in range(ns):
        for t in range(nt):
            c[s, ns + t] = c[ns + t, s] = _ref_mse(hs[s + 1], ht[t + 1], mask)
    return c


def _ref_masses(ns: int, nt: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.concatenate([np.full(ns, 1.0 / ns), np.zeros(nt)])
    b = np.concatenate([np.zeros(ns), np.full(nt, 1.0 / nt)])
    return a, b


def _linprog_cost(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    n, m = c.shape
    rows = np.zeros((n, n * m))
    cols = np.zeros((m, n * m))
    for i in range(n):
        rows[i, i * m : (i + 1) * m] = 1.0
    for j in range(m):
        cols[j, j::m] = 1.0
    res = linprog(
        c.reshape(-1),
        A_eq=np.vstack([rows, cols]),
        b_eq=np.concatenate([a, b]),
        bounds=(0, None),
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    assert res.status == 0, res.message
    return float(res.fun)


def _np(hs: list[torch.Tensor]) -> list[np.ndarray]:
    return [h.detach().numpy() for h in hs]


# ---------------------------------------------------------------------------------------------------------


def test_log_names():
    assert EMD_LOG_NAME == "unweighted_hidden_hidden_mse_emd"
    assert EMBEDDING_LOG_NAME == "unweighted_embedding_hidden_mse"


@pytest.mark.parametrize("masked", [True, False])
def test_flow_marginals_and_cost_match_linprog(masked):
    hs, ht = _hidden(LS, D, 0), _hidden(LT, D, 1)
    mask = _mask() if masked else None
    emd_term, emb_term, info = emd_loss(hs, ht, [None] * (LS + 1), mask)
    flow, cost = info["flow"], info["cost"]

    assert flow.dtype == torch.float64 and flow.shape == (LS + LT, LS + LT)
    assert cost.shape == (LS + LT, LS + LT) and not cost.requires_grad
    f = flow.numpy()
    assert (f >= 0).all()
    np.testing.assert_allclose(f[:LS].sum(axis=1), np.full(LS, 1.0 / LS), atol=1e-12)
    np.testing.assert_allclose(f[:, LS:].sum(axis=0), np.full(LT, 1.0 / LT), atol=1e-12)
    # all mass goes from the student block to the teacher block
    assert np.abs(f[LS:]).sum() == 0 and np.abs(f[:, :LS]).sum() == 0

    mask_np = mask.numpy() if mask is not None else None
    ref_c = _ref_cost(_np(hs), _np(ht), mask_np)
    np.testing.assert_allclose(cost.numpy(), ref_c, rtol=1e-12, atol=1e-14)

    a, b = _ref_masses(LS, LT)
    ref_opt = _linprog_cost(a, b, ref_c)
    assert abs(emd_term.item() - ref_opt) < 1e-8
    assert abs(float((f * ref_c).sum()) - ref_opt) < 1e-8

    assert abs(emb_term.item() - _ref_mse(hs[0].numpy(), ht[0].numpy(), mask_np)) < 1e-12


def test_given_weights_are_normalised_masses():
    hs, ht = _hidden(LS, D, 2), _hidden(LT, D, 3)
    mask = _mask()
    w_s = torch.tensor([3.0, 1.0])
    w_t = torch.tensor([1.0, 2.0, 3.0, 4.0])
    emd_term, _, info = emd_loss(hs, ht, None, mask, weights_S=w_s, weights_T=w_t)
    f = info["flow"].numpy()
    a = np.concatenate([np.array([0.75, 0.25]), np.zeros(LT)])
    b = np.concatenate([np.zeros(LS), np.array([0.1, 0.2, 0.3, 0.4])])
    np.testing.assert_allclose(f.sum(axis=1), a, atol=1e-12)
    np.testing.assert_allclose(f.sum(axis=0), b, atol=1e-12)
    ref_opt = _linprog_cost(a, b, _ref_cost(_np(hs), _np(ht), mask.numpy()))
    assert abs(emd_term.item() - ref_opt) < 1e-8

    with pytest.raises(ReductionError, match="weights_T"):
        emd_loss(hs, ht, None, mask, weights_T=torch.ones(LT + 1))
    with pytest.raises(ReductionError, match="weights_S"):
        emd_loss(hs, ht, None, mask, weights_S=torch.tensor([1.0, -1.0]))


def test_gradient_flows_through_cost_only():
    hs, ht = _hidden(LS, D, 4), _hidden(LT, D, 5)
    hs = [h.clone().requires_grad_(True) for h in hs]
    mask = _mask()
    emd_term, _emb_term, info = emd_loss(hs, ht, None, mask)
    assert not info["flow"].requires_grad
    emd_term.backward()
    # d/dh_S[s+1] of Σ_t F[s, LS+t]·mse(h_S[s+1], h_T[t+1]) with F held constant
    f = info["flow"]
    m = mask.to(torch.float64)[..., None]
    for s in range(LS):
        expected = torch.zeros_like(hs[s + 1])
        for t in range(LT):
            expected += f[s, LS + t] * 2 * (hs[s + 1].detach() - ht[t + 1]) * m / (mask.sum() * D)
        torch.testing.assert_close(hs[s + 1].grad, expected, rtol=1e-10, atol=1e-14)
    assert hs[0].grad is None  # the embeddings only enter the separate embedding term


def test_optimizer_steps_decrease_emd_loss():
    ht = _hidden(LT, D, 7)
    hs = [h.clone().requires_grad_(True) for h in _hidden(LS, D, 6)]
    mask = _mask()
    opt = torch.optim.SGD(hs, lr=5.0)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        emd_term, emb_term, _ = emd_loss(hs, ht, None, mask)
        (emd_term + emb_term).backward()
        losses.append(emd_term.item())
        opt.step()
    assert all(b < a for a, b in pairwise(losses)), losses
    assert losses[-1] < 0.8 * losses[0]


def test_mask_ignores_padding_and_differs_from_unmasked():
    hs, ht = _hidden(LS, D, 8), _hidden(LT, D, 9)
    mask = _mask()
    masked, emb_masked, _ = emd_loss(hs, ht, None, mask)
    unmasked, emb_unmasked, _ = emd_loss(hs, ht, None, None)
    assert abs(masked.item() - unmasked.item()) > 1e-6
    assert abs(emb_masked.item() - emb_unmasked.item()) > 1e-6

    # changing the padded positions leaves the masked loss unchanged and changes the unmasked one
    pad = (mask == 0)[..., None]
    hs2 = [torch.where(pad, h + 10.0, h) for h in hs]
    masked2, emb_masked2, _ = emd_loss(hs2, ht, None, mask)
    unmasked2, _, _ = emd_loss(hs2, ht, None, None)
    assert abs(masked2.item() - masked.item()) < 1e-12
    assert abs(emb_masked2.item() - emb_masked.item()) < 1e-12
    assert abs(unmasked2.item() - unmasked.item()) > 1e-3


def test_identical_layers_give_zero_loss():
    ht = _hidden(LT, D, 10)
    hs = [ht[0], ht[2], ht[4]]
    emd_term, emb_term, info = emd_loss(hs, ht, None, _mask())
    # masses 1/2 vs 1/4: each student layer must spread onto two teacher layers, so the loss stays positive,
    # but the flow sends a full 1/LT to each exact match (S1 = T2, S2 = T4)
    f = info["flow"].numpy()
    assert emb_term.item() == 0.0
    assert f[0, LS + 1] == pytest.approx(0.25) and f[1, LS + 3] == pytest.approx(0.25)
    assert emd_term.item() > 0

    hs_same = [ht[0], ht[1], ht[2], ht[3], ht[4]]
    emd_term, _, _ = emd_loss(hs_same, ht, None, _mask())
    assert emd_term.item() == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("kind", ["linear", "relu", "tanh"])
def test_projections_path(kind):
    dim_s = 6
    projs = emd_projections(LS + 1, dim_s, D, kind)
    assert len(projs) == LS + 1
    for p in projs:
        lin = p if isinstance(p, nn.Linear) else p[0]
        assert lin.in_features == dim_s and lin.out_features == D
        assert torch.count_nonzero(lin.bias) == 0
        assert 0.005 < lin.weight.std().item() < 0.05
        p.double()

    hs, ht = _hidden(LS, dim_s, 11), _hidden(LT, D, 12)
    mask = _mask()
    emd_term, emb_term, info = emd_loss(hs, ht, projs, mask)

    with torch.no_grad():
        projected = [projs[i](hs[i]).numpy() for i in range(LS + 1)]
    ref_c = _ref_cost(projected, _np(ht), mask.numpy())
    np.testing.assert_allclose(info["cost"].numpy(), ref_c, rtol=1e-12, atol=1e-14)
    a, b = _ref_masses(LS, LT)
    assert abs(emd_term.item() - _linprog_cost(a, b, ref_c)) < 1e-8
    assert abs(emb_term.item() - _ref_mse(projected[0], ht[0].numpy(), mask.numpy())) < 1e-12

    (emd_term + emb_term).backward()
    for p in projs:
        assert all(q.grad is not None and torch.isfinite(q.grad).all() for q in p.parameters())

    # a few steps on the projections alone lower the loss
    opt = torch.optim.Adam([q for p in projs for q in p.parameters()], lr=1e-2)
    start = emd_term.item()
    for _ in range(20):
        opt.zero_grad()
        e, _, _ = emd_loss(hs, ht, projs, mask)
        e.backward()
        opt.step()
    assert emd_loss(hs, ht, projs, mask)[0].item() < start


def test_shape_errors():
    hs, ht = _hidden(LS, 6, 13), _hidden(LT, D, 14)
    with pytest.raises(ReductionError, match="add a projection"):
        emd_loss(hs, ht, None, _mask())
    with pytest.raises(ReductionError, match="projections"):
        emd_loss(hs, ht, emd_projections(LS, 6, D, "linear"), _mask())
    with pytest.raises(ReductionError, match="at least one layer"):
        emd_loss(hs[:1], ht, None, _mask())
    with pytest.raises(ValueError, match="not a projection"):
        emd_projections(3, 6, D, "gelu")


def test_non_finite_cost_gives_nan_loss():
    hs, ht = _hidden(LS, D, 15), _hidden(LT, D, 16)
    hs[1] = hs[1].clone()
    hs[1][0, 0, 0] = float("nan")
    emd_term, _, info = emd_loss(hs, ht, None, None)
    assert torch.isnan(emd_term) and torch.isnan(info["flow"]).all()


def test_transport_flow_tie_keeps_cost():
    # all costs equal: every feasible plan is optimal, the cost is fixed
    a = np.array([0.5, 0.5, 0.0, 0.0])
    b = np.array([0.0, 0.0, 0.5, 0.5])
    c = np.zeros((4, 4))
    c[:2, 2:] = c[2:, :2] = 1.0
    f = transport_flow(a, b, c)
    assert (f * c).sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(f.sum(axis=1), a, atol=1e-12)
    np.testing.assert_allclose(f.sum(axis=0), b, atol=1e-12)


def test_float32_inputs_keep_dtype_and_flow_is_float64():
    hs = [h.float() for h in _hidden(LS, D, 17)]
    ht = [h.float() for h in _hidden(LT, D, 18)]
    emd_term, emb_term, info = emd_loss(hs, ht, None, _mask())
    assert emd_term.dtype == torch.float32 and emb_term.dtype == torch.float32
    assert info["flow"].dtype == torch.float64
    assert info["cost"].dtype == torch.float32
