"""Linear CKA and attention similarity of layer_similarity, against an independent HSIC reference and CKA's invariances."""

import numpy as np
import pytest
import torch
from op_call import call_op
from transformers import BertConfig, BertModel

from textbrewer_worker.layer_similarity import attention_similarity, linear_cka
from textbrewer_worker.wire.ops import WorkerState


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA from Gram matrices with the centring matrix H (the kernel form, not the feature-space one under test)."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k = h @ (x @ x.T) @ h
    m = h @ (y @ y.T) @ h
    return float(np.sum(k * m) / np.sqrt(np.sum(k * k) * np.sum(m * m)))


def features(seed: int, n: int = 40, d: int = 12) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)))


def test_cka_matches_the_kernel_form() -> None:
    x = features(0)
    y = torch.tanh(x @ features(1, 12, 7)) + 0.3 * features(2, 40, 7)
    assert linear_cka(x, y) == pytest.approx(hsic_cka(x.numpy(), y.numpy()), abs=1e-12)
    assert linear_cka(x.float(), y.float()) == pytest.approx(hsic_cka(x.numpy(), y.numpy()), abs=1e-6)


def test_cka_is_one_for_the_same_representation_up_to_rotation_scale_and_shift() -> None:
    x = features(3)
    q, _ = torch.linalg.qr(features(4, 12, 12))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 3.7 * (x @ q) + 5.0) == pytest.approx(1.0, abs=1e-12)
    other = features(5)
    assert linear_cka(x @ q, other) == pytest.approx(linear_cka(x, other), abs=1e-12)
    assert linear_cka(2.5 * x, other) == pytest.approx(linear_cka(x, other), abs=1e-12)


def test_cka_is_not_invariant_to_an_anisotropic_scaling_and_is_low_for_unrelated_features() -> None:
    x = features(6)
    scale = torch.ones(12, dtype=torch.float64)
    scale[0] = 50.0
    assert linear_cka(x, x * scale) < 0.9
    assert linear_cka(features(7, 2000, 8), features(8, 2000, 8)) < 0.02


def test_attention_similarity_is_one_for_equal_maps_and_ignores_padding() -> None:
    a = torch.softmax(features(9, 2 * 5, 5).view(2, 5, 5), -1)
    b = torch.softmax(features(10, 2 * 5, 5).view(2, 5, 5), -1)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert attention_similarity(a, a, mask) == pytest.approx(1.0, abs=1e-12)
    c = a.clone()
    c[0, 3:, :] = b[0, 3:, :]  # padded queries
    c[0, :, 3:] = 0.0  # padded keys
    assert attention_similarity(a, c, mask) == pytest.approx(1.0, abs=1e-12)
    assert attention_similarity(a, b, mask) < 0.99


def test_layer_similarity_op_on_a_tiny_bert() -> None:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32)
    state = WorkerState(device="cpu")
    teacher = state.add_model(BertModel(config))
    student = state.add_model(BertModel(BertConfig(**{**config.to_dict(), "num_hidden_layers": 2})))
    ids = torch.randint(5, 50, (4, 9))
    mask = torch.ones(4, 9, dtype=torch.int64)
    mask[0, 6:] = 0
    out = call_op(
        state,
        "layer_similarity",
        {"teacher": teacher, "student": student, "batches": [{"input_ids": ids, "attention_mask": mask}]},
    )
    assert out["tokens"] == 33 and out["layersT"] == 4 and out["layersS"] == 3
    cka = np.array(out["teacherCka"])
    assert cka.shape == (4, 4) and np.allclose(np.diag(cka), 1.0) and np.allclose(cka, cka.T)
    assert np.array(out["teacherAttention"]).shape == (3, 3) and np.array(out["crossCka"]).shape == (3, 4)
    with pytest.raises(ValueError, match=r"batches\[0\]: needs input_ids and attention_mask"):
        call_op(state, "layer_similarity", {"teacher": teacher, "batches": [{"input_ids": ids}]})
