"""Cached teacher features: picking the entries the matches read, their storage forms, and standing in for a forward.

Storage forms: float32 as computed, float16 (round to nearest even), or int8 with one float32 scale per row (the
last dim: a token's hidden vector, an attention row): scale = max|row| / 127, q = round(row / scale). int8 puts two
tensors on the wire per feature, the rows and their scales.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

INT8_MAX = 127.0


def select_features(results_T: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
    """The teacher adaptor's `feature[layer]` of each item, float32, detached."""
    out = []
    for item in items:
        feature, layer = item["feature"], int(item["layer"])
        entries = results_T.get(feature)
        if entries is None:
            raise KeyError(f"teacherCache features: the teacher adaptor returns no '{feature}' for the matches to read")
        if not -len(entries) <= layer < len(entries):
            raise IndexError(
                f"teacherCache features: layer {layer} is out of range; the teacher adaptor's '{feature}' has "
                f"{len(entries)} entries"
            )
        out.append(entries[layer].detach().float())
    return out


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 rows, float32 scale per row): symmetric, the row's largest magnitude maps to 127; a zero row has scale 0."""
    x = x.float()
    scale = x.abs().amax(dim=-1) / INT8_MAX
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(x / safe.unsqueeze(-1)).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
    return q, scale


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float().unsqueeze(-1)


def encode_features(features: Sequence[torch.Tensor], dtype: str) -> list[torch.Tensor]:
    """The features in their storage form, in order (int8: rows then scales of each)."""
    if dtype == "float32":
        return [f.float().contiguous() for f in features]
    if dtype == "float16":
        return [f.to(torch.float16).contiguous() for f in features]
    if dtype == "int8":
        return [t.contiguous() for f in features for t in quantize_rows(f)]
    raise ValueError(f"teacherCache.featureDtype: '{dtype}' is not one of float32, float16, int8")


def decode_features(tensors: Sequence[torch.Tensor], dtype: str, count: int) -> list[torch.Tensor]:
    """float32 features from their storage form (`count` features)."""
    per_feature = 2 if dtype == "int8" else 1
    if len(tensors) != count * per_feature:
        raise ValueError(
            f"teacherFeatures: {len(tensors)} tensors for {count} features stored as {dtype} "
            f"(expected {count * per_feature})"
        )
    if dtype == "int8":
        return [dequantize_rows(tensors[2 * i], tensors[2 * i + 1]) for i in range(count)]
    return [t.float() for t in tensors]


def cached_results(cached: Mapping[str, Any], device: torch.device) -> dict[str, list[Any]]:
    """Teacher results holding only the cached entries, each at an index where `layer` (negative ones too) finds it.

    Layers 0..p-1 sit at their own index and layers -k..-1 after them, so a list of p + k entries answers every
    index the matches name without knowing how many layers the teacher has."""
    items = cached["items"]
    decoded = decode_features([t.to(device) for t in cached["tensors"]], cached["dtype"], len(items))
    results: dict[str, list[Any]] = {}
    for feature in {item["feature"] for item in items}:
        layers = [int(item["layer"]) for item in items if item["feature"] == feature]
        positive = max((x + 1 for x in layers if x >= 0), default=0)
        negative = max((-x for x in layers if x < 0), default=0)
        entries: list[Any] = [None] * (positive + negative)
        for item, value in zip(items, decoded):
            if item["feature"] == feature:
                entries[int(item["layer"])] = value
        results[feature] = entries
    return results
