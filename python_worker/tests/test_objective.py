"""The objective's KD term against independent float64 references: list logits with their masks, and top-k
targets for each kdLossType."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from textbrewer_worker.losses import KD_LOSSES, SPARSE_KD_LOSSES
from textbrewer_worker.training.objective import Objective, post_adaptor

B, L = 2, 5
# one mask with a 0.5 weight (TextBrewer keeps every row with mask ≠ 0) and a second, different one
MASK_A = np.array([[1.0, 1.0, 0.5, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0]])
MASK_B = np.array([[0.0, 1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0, 0.0]])


def objective(kind: str = "ce", temperature: float = 2.0, probability_shift: bool = False) -> Objective:
    kd = {
        "kind": "kd",
        "lossType": kind,
        "temperature": temperature,
        "temperatureScheduler": {"type": "none"},
        "probabilityShift": probability_shift,
        "required": False,
        "weight": 1.0,
        "weightScheduler": "none",
    }
    return Objective([kd], torch.device("cpu"), [])


def distill_loss(
    objective: Objective,
    results_S: dict[str, Any],
    results_T: list[dict[str, Any]],
    teacher_logits: list[torch.Tensor] | None = None,
    teacher_topk: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    inputs = objective.inputs(results_S, results_T, {"kdWeight": 1.0}, teacher_logits, teacher_topk)
    return objective.loss(inputs)


def t64(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def log_softmax_row(x: np.ndarray) -> np.ndarray:
    m = max(x)
    lse = m + math.log(sum(math.exp(v - m) for v in x))
    return np.array([v - lse for v in x])


def kept_rows(x: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    return [x[b, i] for b in range(x.shape[0]) for i in range(x.shape[1]) if mask[b, i] != 0]


def ref_row(kind: str, s: np.ndarray, t: np.ndarray, temp: float) -> float:
    log_p_s, log_p_t = log_softmax_row(s / temp), log_softmax_row(t / temp)
    p_t = np.exp(log_p_t)
    if kind == "ce":
        return -sum(a * b for a, b in zip(p_t, log_p_s))
    if kind == "kl":
        return sum(a * (la - lb) for a, la, lb in zip(p_t, log_p_t, log_p_s)) * temp**2
    raise AssertionError(kind)


def ref_kd(kind: str, pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], temp: float) -> float:
    """Σ over logits tensors of the mean over the rows their mask keeps."""
    total = 0.0
    for s, t, mask in pairs:
        rows = list(zip(kept_rows(s, mask), kept_rows(t, mask)))
        total += sum(ref_row(kind, rs, rt, temp) for rs, rt in rows) / len(rows)
    return total


def list_logits(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two 3-D logits tensors per side with different class counts, like start/end logits over positions."""
    g = np.random.default_rng(seed)
    shapes = [(B, L, 4), (B, L, 6)]
    return [g.normal(0, 2, sh) for sh in shapes], [g.normal(0, 2, sh) for sh in shapes]


def kd_of(out: tuple[torch.Tensor, dict[str, torch.Tensor]]) -> float:
    return float(out[1]["unweighted_kd_loss"])


def close(actual: float, expected: float, tol: float = 1e-6) -> None:
    assert math.isfinite(actual), actual
    assert abs(actual - expected) <= tol * max(1.0, abs(expected)), (actual, expected)


@pytest.mark.parametrize("kind", ["ce", "kl"])
def test_list_logits_with_one_mask_apply_it_to_every_item(kind: str) -> None:
    s, t = list_logits(1)
    results_S = post_adaptor({"logits": [t64(x) for x in s], "logits_mask": t64(MASK_A)})
    results_T = [post_adaptor({"logits": [t64(x) for x in t], "logits_mask": t64(MASK_A)})]
    out = distill_loss(objective(kind), results_S, results_T)
    close(kd_of(out), ref_kd(kind, [(s[0], t[0], MASK_A), (s[1], t[1], MASK_A)], 2.0))


def test_list_logits_with_one_mask_per_item() -> None:
    s, t = list_logits(2)
    masks = [t64(MASK_A), t64(MASK_B)]
    results_S = post_adaptor({"logits": [t64(x) for x in s], "logits_mask": masks})
    results_T = [post_adaptor({"logits": [t64(x) for x in t], "logits_mask": masks})]
    out = distill_loss(objective(), results_S, results_T)
    close(kd_of(out), ref_kd("ce", [(s[0], t[0], MASK_A), (s[1], t[1], MASK_B)], 2.0))


def test_cached_teacher_logits_take_the_student_single_mask_for_every_item() -> None:
    s, t = list_logits(3)
    results_S = post_adaptor({"logits": [t64(x) for x in s], "logits_mask": t64(MASK_B)})
    out = distill_loss(objective(), results_S, [], teacher_logits=[t64(x) for x in t])
    close(kd_of(out), ref_kd("ce", [(s[0], t[0], MASK_B), (s[1], t[1], MASK_B)], 2.0))


def test_mask_count_mismatch_is_refused_with_both_counts() -> None:
    s, t = list_logits(4)
    three = [t64(MASK_A)] * 3
    results_S = post_adaptor({"logits": [t64(x) for x in s], "logits_mask": three})
    results_T = [post_adaptor({"logits": [t64(x) for x in t]})]
    with pytest.raises(ValueError, match="student adaptor gives 3 logits_mask tensors for 2 logits tensors"):
        distill_loss(objective(), results_S, results_T)


def test_probability_shift_labels_count_mismatch_is_refused() -> None:
    s, t = list_logits(5)
    labels = torch.zeros(B, L, dtype=torch.long)
    results_S = post_adaptor({"logits": [t64(x) for x in s], "labels": labels})
    results_T = [post_adaptor({"logits": [t64(x) for x in t]})]
    with pytest.raises(ValueError, match="1 labels tensors for 2 logits tensors"):
        distill_loss(objective(probability_shift=True), results_S, results_T)


# ------------------------------------------------------------------------------------------------------
# top-k targets


def topk_of(t: np.ndarray, temp: float, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 top-k teacher log-probabilities at temp and their indices, per row of t (..., V)."""
    rows = t.reshape(-1, t.shape[-1])
    lps, idxs = [], []
    for row in rows:
        full = log_softmax_row(row / temp)
        order = np.argsort(-full, kind="stable")[:k]
        idxs.append(order)
        lps.append(full[order])
    shape = t.shape[:-1] + (k,)
    return t64(np.array(lps).reshape(shape)), torch.from_numpy(np.array(idxs, dtype=np.int64).reshape(shape))


def topk_results(s: list[np.ndarray], t: list[np.ndarray], temp: float, tail: str) -> dict[str, Any]:
    targets: list[torch.Tensor] = []
    for x in t:
        targets.extend(topk_of(x, temp, x.shape[-1]))
    return {"targets": targets, "tail": tail, "support": "teacher"}


@pytest.mark.parametrize("kind", ["ce", "kl"])
@pytest.mark.parametrize("tail", ["ignore", "uniform"])
def test_topk_targets_at_full_vocab_give_the_asked_loss_for_list_logits_with_one_mask(kind: str, tail: str) -> None:
    s, t = list_logits(6)
    results_S = post_adaptor({"logits": [t64(x) for x in s], "logits_mask": t64(MASK_A)})
    out = distill_loss(objective(kind), results_S, [], teacher_topk=topk_results(s, t, 2.0, tail))
    close(kd_of(out), ref_kd(kind, [(s[0], t[0], MASK_A), (s[1], t[1], MASK_A)], 2.0))


def test_topk_targets_refuse_the_losses_without_a_sparse_form() -> None:
    s, t = list_logits(7)
    results_S = post_adaptor({"logits": [t64(x) for x in s]})
    topk = topk_results(s, t, 2.0, "ignore")
    refused = sorted(set(KD_LOSSES) - set(SPARSE_KD_LOSSES))
    assert refused == ["jsd", "mse", "reverse_kl", "token_skew_kl", "token_skew_reverse_kl", "token_tvd", "tvd", "uld"]
    for kind in refused:
        with pytest.raises(ValueError, match=rf"kdLossType '{kind}' cannot learn from top-k"):
            distill_loss(objective(kind), results_S, [], teacher_topk=topk)


@pytest.mark.parametrize("kind", ["token_kl", "token_reverse_kl", "token_jsd"])
@pytest.mark.parametrize(("tail", "support"), [("ignore", "teacher"), ("uniform", "teacher"), ("bucket", "both")])
def test_topk_targets_at_full_vocab_give_the_token_losses_dense_value(kind: str, tail: str, support: str) -> None:
    s, t = list_logits(8)
    results_S = post_adaptor({"logits": [t64(x) for x in s], "logits_mask": t64(MASK_A)})
    topk = {**topk_results(s, t, 2.0, tail), "support": support}
    out = distill_loss(objective(kind), results_S, [], teacher_topk=topk)
    results_T = post_adaptor({"logits": [t64(x) for x in t], "logits_mask": t64(MASK_A)})
    dense = distill_loss(objective(kind), results_S, [results_T])
    close(kd_of(out), kd_of(dense))


def test_topk_targets_with_support_both_are_refused_for_the_classic_losses() -> None:
    s, t = list_logits(9)
    results_S = post_adaptor({"logits": [t64(x) for x in s]})
    topk = {**topk_results(s, t, 2.0, "ignore"), "support": "both"}
    with pytest.raises(ValueError, match="teacherCache.support: 'both' needs kdLossType token_kl"):
        distill_loss(objective("kl"), results_S, [], teacher_topk=topk)


@pytest.mark.parametrize("form", ["topk", "sampled"])
def test_sparse_targets_refuse_probability_shift(form: str) -> None:
    s, t = list_logits(10)
    results_S = post_adaptor(
        {"logits": [t64(x) for x in s], "labels": [torch.zeros(x.shape[0], dtype=torch.long) for x in s]}
    )
    topk = {**topk_results(s, t, 2.0, "ignore"), "form": form}
    with pytest.raises(ValueError, match="probabilityShift: sparse teacher targets"):
        distill_loss(objective("ce", probability_shift=True), results_S, [], teacher_topk=topk)
