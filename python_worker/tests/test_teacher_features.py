"""Cached teacher features: int8 per-row quantisation against a float64 reference, and where cached entries sit."""

from __future__ import annotations

import torch

from textbrewer_worker.teacher_features import (
    cached_results,
    decode_features,
    encode_features,
    quantize_rows,
    select_features,
)


def test_int8_rows_round_trip_within_half_a_step_of_a_float64_reference() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16) * torch.logspace(-3, 2, 5).view(1, 5, 1)
    x[1, 2] = 0.0  # a zero row: scale 0, codes 0
    q, scale = quantize_rows(x)
    assert q.dtype == torch.int8 and scale.dtype == torch.float32 and scale.shape == (3, 5)
    ref_scale = x.double().abs().amax(-1) / 127
    assert torch.allclose(scale.double(), ref_scale, rtol=2**-23, atol=0)
    back = decode_features([q, scale], "int8", 1)[0]
    step = scale.double().unsqueeze(-1)
    assert bool(((back.double() - x.double()).abs() <= step / 2 + x.double().abs() * 2**-22).all())
    assert int(q.abs().max()) == 127
    assert bool((q[1, 2] == 0).all()) and float(scale[1, 2]) == 0.0


def test_float16_and_float32_forms() -> None:
    x = torch.randn(2, 4, 8)
    f16 = encode_features([x], "float16")
    assert f16[0].dtype == torch.float16
    assert torch.equal(decode_features(f16, "float16", 1)[0], x.half().float())
    assert torch.equal(decode_features(encode_features([x], "float32"), "float32", 1)[0], x)


def test_cached_entries_answer_the_layer_indices_the_matches_name() -> None:
    hidden = [torch.full((1, 2, 3), float(i)) for i in range(5)]
    attention = [torch.full((1, 1, 2, 2), float(10 + i)) for i in range(4)]
    items = [
        {"feature": "attention", "layer": 3},
        {"feature": "hidden", "layer": -1},
        {"feature": "hidden", "layer": 1},
    ]
    tensors = encode_features(select_features({"hidden": hidden, "attention": attention}, items), "float32")
    results = cached_results({"items": items, "dtype": "float32", "tensors": tensors}, torch.device("cpu"))
    assert torch.equal(results["hidden"][-1], hidden[-1])
    assert torch.equal(results["hidden"][1], hidden[1])
    assert torch.equal(results["attention"][3], attention[3])
