"""Sparse (top-k) token losses against float64 references built from the tail conventions' definitions."""

from __future__ import annotations

import pytest
import torch

from textbrewer_worker.llm_losses import token_kd_loss
from textbrewer_worker.sparse_llm_losses import sparse_token_kd_loss

Tensor = torch.Tensor


def divergence(kind: str, p: Tensor, q: Tensor, beta: float) -> Tensor:
    """D between teacher p and student q, 1-D probability vectors on one support, from the definitions."""

    def kl(a: Tensor, b: Tensor) -> Tensor:
        return sum(
            (a[i] * (a[i].log() - b[i].log()) for i in range(a.shape[0]) if a[i] > 0), torch.zeros((), dtype=a.dtype)
        )

    if kind == "kl":
        return kl(p, q)
    if kind == "reverse_kl":
        return kl(q, p)
    m = beta * p + (1 - beta) * q
    return beta * kl(p, m) + (1 - beta) * kl(q, m)


def reference_row(kind: str, s: Tensor, t: Tensor, k: int, tau: float, tail: str, support: str, beta: float) -> Tensor:
    """One position: the teacher's top-k of softmax(t/τ), the student's softmax(s/τ), the convention, τ²·D."""
    p_full, q = torch.softmax(t / tau, -1), torch.softmax(s / tau, -1)
    vocab = s.shape[0]
    top_t = p_full.topk(k).indices.tolist()
    p = {i: p_full[i] for i in top_t}
    rest = 1 - sum(p.values())
    u = rest / max(vocab - k, 1)
    if tail == "uniform":
        p_hat = torch.stack([p.get(i, u) for i in range(vocab)])
        return tau**2 * divergence(kind, p_hat, q, beta)
    ids = list(top_t)
    if support == "both":
        ids += [i for i in q.detach().topk(k).indices.tolist() if i not in p]
    p_s = torch.stack([p.get(i, u) for i in ids])
    q_s = torch.stack([q[i] for i in ids])
    if tail == "renormalize":
        return tau**2 * divergence(kind, p_s / p_s.sum(), q_s / q_s.sum(), beta)
    p_b = torch.cat([p_s, (1 - p_s.sum()).reshape(1)])
    q_b = torch.cat([q_s, (1 - q_s.sum()).reshape(1)])
    return tau**2 * divergence(kind, p_b, q_b, beta)


def targets(t: Tensor, k: int, tau: float) -> tuple[Tensor, Tensor]:
    values, indices = torch.log_softmax(t / tau, -1).topk(k, dim=-1)
    return values, indices


def data(seed: int, shape: tuple[int, ...] = (2, 4, 12)) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    t = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    mask = torch.rand(shape[:-1], generator=g) > 0.25
    return s, t, mask


CONVENTIONS = [
    ("renormalize", "teacher"),
    ("renormalize", "both"),
    ("uniform", "teacher"),
    ("bucket", "teacher"),
    ("bucket", "both"),
]


@pytest.mark.parametrize(("tail", "support"), CONVENTIONS)
@pytest.mark.parametrize(("kind", "beta"), [("kl", 0.5), ("reverse_kl", 0.5), ("jsd", 0.5), ("jsd", 0.2)])
def test_sparse_loss_and_gradient_equal_the_definition(kind: str, beta: float, tail: str, support: str) -> None:
    s, t, mask = data(11)
    k, tau = 4, 1.7
    values, indices = targets(t, k, tau)
    x = s.clone().requires_grad_()
    got = sparse_token_kd_loss(
        kind,
        x,
        values,
        indices.int(),
        tau,
        tail=tail,
        support=support,
        mask=mask,
        beta=beta,
        chunk_size=3,  # type: ignore[arg-type]
    )
    got.backward()
    y = s.clone().requires_grad_()
    rows = [
        reference_row(kind, y[b, i], t[b, i], k, tau, tail, support, beta)
        for b in range(s.shape[0])
        for i in range(s.shape[1])
        if mask[b, i]
    ]
    want = torch.stack(rows).mean()
    want.backward()
    assert got.item() == pytest.approx(want.item(), abs=1e-6, rel=1e-6)
    assert x.grad is not None and y.grad is not None
    torch.testing.assert_close(x.grad, y.grad, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(("tail", "support"), CONVENTIONS)
@pytest.mark.parametrize("kind", ["kl", "reverse_kl", "jsd"])
def test_at_k_equal_vocab_every_convention_is_the_dense_loss(kind: str, tail: str, support: str) -> None:
    s, t, mask = data(12, (2, 3, 9))
    values, indices = targets(t, 9, 2.0)
    got = sparse_token_kd_loss(kind, s, values, indices, 2.0, tail=tail, support=support, mask=mask)  # type: ignore[arg-type]
    want = token_kd_loss(kind, s, t, 2.0, mask=mask)  # type: ignore[arg-type]
    assert got.item() == pytest.approx(want.item(), abs=1e-9)


def test_sparse_targets_are_refused_where_they_have_no_meaning() -> None:
    s, t, _ = data(13)
    values, indices = targets(t, 3, 1.0)
    with pytest.raises(ValueError, match="sparse token_tvd: no sparse form"):
        sparse_token_kd_loss("tvd", s, values, indices)
    with pytest.raises(ValueError, match="tail must be one of renormalize, uniform, bucket, got 'ignore'"):
        sparse_token_kd_loss("kl", s, values, indices, tail="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uniform tail covers the whole vocabulary"):
        sparse_token_kd_loss("kl", s, values, indices, tail="uniform", support="both")
    with pytest.raises(ValueError, match="does not fit teacher top-k shape"):
        sparse_token_kd_loss("kl", s[:1], values, indices)
