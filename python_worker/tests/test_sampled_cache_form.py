"""Sampled teacher targets as a cache form: seeded draws with their log-probabilities, and unbiased KD losses."""

from __future__ import annotations

import pytest
import torch

from textbrewer_worker.losses import get_loss
from textbrewer_worker.sampled_cache_form import get_sampled_kd_loss, sampled_cache_targets, sampled_kd_loss

Tensor = torch.Tensor


def logits(seed: int, shape: tuple[int, ...]) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2


def test_targets_are_seeded_int32_draws_with_the_teacher_log_probabilities() -> None:
    x = logits(1, (3, 4, 50))
    rng = torch.get_rng_state()
    lp, ids = sampled_cache_targets([x], 16, 2.0, seed=9)
    assert torch.equal(torch.get_rng_state(), rng)  # the training RNG is left alone
    assert ids.dtype == torch.int32 and ids.shape == (3, 4, 16) and lp.dtype == torch.float32
    torch.testing.assert_close(lp, torch.log_softmax(x.float() / 2.0, -1).gather(-1, ids.long()))
    again, ids_again = sampled_cache_targets([x], 16, 2.0, seed=9)
    assert torch.equal(ids, ids_again) and torch.equal(lp, again)
    assert not torch.equal(ids, sampled_cache_targets([x], 16, 2.0, seed=10)[1])


@pytest.mark.parametrize("kind", ["ce", "kl"])
def test_the_mean_over_seeds_equals_the_full_distribution_loss_and_gradient(kind: str) -> None:
    """E over draws of the sampled loss (value and student gradient) is the dense loss: within 4 standard errors."""
    s, t, tau, n, seeds = logits(2, (6, 40)), logits(3, (6, 40)), 2.0, 4, 400
    s.requires_grad_(True)
    full = get_loss("kd", kind)(s, t, tau)
    (full_grad,) = torch.autograd.grad(full, s)
    values, grads = [], []
    for seed in range(seeds):
        lp, ids = sampled_cache_targets([t], n, tau, seed)
        value = sampled_kd_loss(kind, s, lp, ids, tau, chunk_size=4)  # type: ignore[arg-type]
        values.append(value.detach())
        grads.append(torch.autograd.grad(value, s)[0])
    v, g = torch.stack(values), torch.stack(grads)
    assert abs(v.mean() - full.detach()) < 4 * v.std() / seeds**0.5
    # the squared error of the mean gradient is, in expectation, the summed variance over the seeds (240 entries:
    # the ratio stays near 1); a biased gradient would exceed it by its bias
    assert ((g.mean(0) - full_grad) ** 2).sum() < 2 * g.var(0).sum() / seeds
    # one estimate alone is not the full loss
    assert abs(values[0] - full.detach()) > 1e-3


def test_kl_at_all_the_mass_in_one_draw_and_token_kl_share_a_form() -> None:
    s, t = logits(4, (2, 3, 10)), logits(5, (2, 3, 10))
    lp, ids = sampled_cache_targets([t], 8, 1.0, 0)
    kl = get_sampled_kd_loss("kl")(s, lp, ids, 1.0)
    assert get_sampled_kd_loss("token_kl")(s, lp, ids, 1.0) == kl
    want = (lp - torch.log_softmax(s, -1).gather(-1, ids.long())).mean()
    torch.testing.assert_close(kl, want)


def test_a_loss_without_a_sampled_form_and_misfit_targets_are_refused() -> None:
    with pytest.raises(ValueError, match=r"kdLossType 'mse' cannot learn from sampled teacher targets.*'ce' or 'kl'"):
        get_sampled_kd_loss("mse")
    lp, ids = sampled_cache_targets([logits(6, (2, 10))], 3, 1.0, 0)
    with pytest.raises(ValueError, match=r"sampled kl: student logits shape \(3, 10\) does not fit sampled targets"):
        sampled_kd_loss("kl", logits(7, (3, 10)), lp, ids)
