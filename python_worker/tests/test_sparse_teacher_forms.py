"""Sparse teacher forms: compact ids, top-k and sampled targets against their definitions, the fidelity report."""

from __future__ import annotations

import math

import pytest
import torch

from textbrewer_worker.llm_losses import token_kl_loss
from textbrewer_worker.sparse_teacher_forms import (
    index_dtype,
    sampled_targets,
    sampled_token_kl_loss,
    sparse_fidelity,
    topk_targets,
)


def logits(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2


def test_token_ids_are_int32() -> None:
    assert index_dtype(50257) == torch.int32 and index_dtype(151936) == torch.int32 and index_dtype(40) == torch.int32
    assert index_dtype((1 << 31) + 1) == torch.int64
    values, ids = topk_targets(logits(1, (2, 3, 40000)), 4, 1.0)
    assert ids.dtype == torch.int32 and values.dtype == torch.float32
    assert sampled_targets(logits(1, (2, 300)), 5, 1.0).dtype == torch.int32


def test_topk_targets_are_the_largest_full_vocabulary_log_probabilities() -> None:
    x = logits(2, (3, 50))
    values, ids = topk_targets(x, 5, 2.0)
    full = torch.log_softmax(x / 2.0, -1)
    torch.testing.assert_close(values.double(), full.gather(-1, ids.long()), atol=1e-6, rtol=1e-6)
    assert (full.gather(-1, ids.long()).min(-1).values >= full.sort(-1, descending=True).values[:, 4] - 1e-12).all()


def test_sampled_ids_are_seeded_draws_whose_frequencies_estimate_the_teacher_distribution() -> None:
    x = logits(3, (2, 8))
    draws = sampled_targets(x, 40000, 1.5, torch.Generator().manual_seed(0))
    again = sampled_targets(x, 40000, 1.5, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    p = torch.softmax(x / 1.5, -1)
    freq = torch.stack([torch.bincount(draws[r].long(), minlength=8).double() / 40000 for r in range(2)])
    sigma = (p * (1 - p) / 40000).sqrt()
    assert ((freq - p).abs() <= 5 * sigma + 1e-12).all()


def test_the_sampled_loss_gradient_is_unbiased_for_the_dense_kl_gradient() -> None:
    s, t = logits(4, (3, 10)), logits(5, (3, 10))
    dense_s = s.clone().requires_grad_()
    token_kl_loss(dense_s, t, 2.0).backward()
    g = torch.Generator().manual_seed(1)
    total = torch.zeros_like(s)
    rounds = 400
    for _ in range(rounds):
        x = s.clone().requires_grad_()
        sampled_token_kl_loss(x, sampled_targets(t, 32, 2.0, g), 2.0, chunk_size=2).backward()
        assert x.grad is not None
        total += x.grad
    assert dense_s.grad is not None
    # the gradient is linear in the empirical distribution: its mean over draws converges to the dense one
    torch.testing.assert_close(total / rounds, dense_s.grad, atol=5e-3, rtol=0)


def test_the_sampled_loss_value_is_the_kl_of_the_empirical_distribution() -> None:
    s = logits(6, (2, 6))
    ids = torch.tensor([[0, 0, 3, 5], [1, 1, 1, 1]], dtype=torch.int16)
    q = torch.softmax(s / 1.0, -1)
    p_hat = [{0: 0.5, 3: 0.25, 5: 0.25}, {1: 1.0}]
    want = (
        sum(sum(w * (math.log(w) - math.log(q[r, j].item())) for j, w in row.items()) for r, row in enumerate(p_hat))
        / 2
    )
    assert sampled_token_kl_loss(s, ids, 1.0).item() == pytest.approx(want, abs=1e-12)


def test_the_fidelity_report_gives_the_kl_and_bytes_of_each_form() -> None:
    x = logits(7, (4, 5, 64))
    report = sparse_fidelity(x, 2.0, ks=[4, 16, 64], samples=[8, 256])
    assert report["positions"] == 20 and report["idBytes"] == 4 and report["dense"]["bytesPerToken"] == 128
    p = torch.softmax(x.reshape(-1, 64) / 2.0, -1)
    kept4 = p.sort(-1, descending=True).values[:, :4].sum(-1)
    top4, top16, full = report["topK"]
    assert top4["keptMass"] == pytest.approx(kept4.mean().item(), abs=1e-6)
    assert top4["klRenormalizedToFull"] == pytest.approx((-kept4.log()).mean().item(), abs=1e-6)
    assert top4["bytesPerToken"] == 4 * (2 + 4) and full["bytesPerToken"] == 64 * 6
    assert top4["klFullToUniformTail"] > top16["klFullToUniformTail"] > 0
    assert full["keptMass"] == pytest.approx(1.0) and full["klFullToUniformTail"] == pytest.approx(0.0, abs=1e-9)
    few, many = report["sampled"]
    assert few["bytesPerToken"] == 8 * (2 + 4) and few["klSampledToFull"] > many["klSampledToFull"] > 0
    assert 1 <= few["distinctIds"] <= 8


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"topK: expected 1 ≤ k ≤ the vocabulary \(6\), got 7"):
        topk_targets(logits(8, (2, 6)), 7, 1.0)
    with pytest.raises(ValueError, match="samples: expected a positive number of draws per token, got 0"):
        sampled_targets(logits(8, (2, 6)), 0, 1.0)
    with pytest.raises(ValueError, match="sampled ids shape"):
        sampled_token_kl_loss(logits(8, (2, 6)), torch.zeros(3, 4, dtype=torch.int16))
