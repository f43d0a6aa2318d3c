"""Projections from student to teacher feature width (TextBrewer's projections)."""

from __future__ import annotations

from typing import Any

from torch import nn

KINDS = ("linear", "relu", "tanh")


def build_projection(spec: dict[str, Any]) -> nn.Module:
    kind, dim_s, dim_t = spec["kind"], int(spec["dimS"]), int(spec["dimT"])
    if kind not in KINDS:
        raise ValueError(f"proj.kind: '{kind}' is not a projection; use one of {', '.join(KINDS)}")
    linear = nn.Linear(dim_s, dim_t)
    nn.init.normal_(linear.weight, mean=0.0, std=0.02)
    nn.init.zeros_(linear.bias)
    if kind == "linear":
        return linear
    return nn.Sequential(linear, nn.ReLU() if kind == "relu" else nn.Tanh())
