"""Optimizers with name-pattern parameter groups, and LR schedules with warmup."""

from __future__ import annotations

import math
import re
from typing import Any

import torch

OPTIMIZERS = {"AdamW": torch.optim.AdamW, "Adam": torch.optim.Adam, "SGD": torch.optim.SGD}
GROUP_KEYS = {
    "lr": "lr",
    "weightDecay": "weight_decay",
    "momentum": "momentum",
    "betas": "betas",
    "eps": "eps",
}


def torch_group_options(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in ("pattern", "params"):
            continue
        name = GROUP_KEYS.get(key, key)
        out[name] = tuple(value) if name == "betas" else value
    return out


def parameter_groups(model: torch.nn.Module, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each named parameter joins the first group whose `pattern` (a regex searched in its name) matches,
    else the default group. Empty groups are dropped."""
    compiled = [(re.compile(g["pattern"]), g) for g in groups]
    buckets: list[list[torch.nn.Parameter]] = [[] for _ in groups]
    default: list[torch.nn.Parameter] = []
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        for i, (pattern, _) in enumerate(compiled):
            if pattern.search(name):
                buckets[i].append(param)
                break
        else:
            default.append(param)
    out = [{"params": default}] if default else []
    for params, (_, group) in zip(buckets, compiled):
        if params:
            out.append({"params": params, **torch_group_options(group)})
    return out


def build_optimizer(spec: dict[str, Any], groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    kind = spec["type"]
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer.type: '{kind}' is not supported; use one of {', '.join(OPTIMIZERS)}")
    defaults = torch_group_options({k: v for k, v in spec.items() if k not in ("type", "groups")})
    return OPTIMIZERS[kind](groups, **defaults)


def lr_lambda(spec: dict[str, Any]):
    """Multiplier of each group's base lr after `step` optimizer steps."""
    kind = spec["type"]
    warmup = int(spec["warmupSteps"])
    total = max(1, int(spec["totalSteps"]))
    min_ratio = float(spec["minLrRatio"])

    def warm(step: int) -> float | None:
        return step / max(1, warmup) if step < warmup else None

    if kind == "constant":
        return lambda step: w if (w := warm(step)) is not None else 1.0
    if kind == "linear":
        return lambda step: w if (w := warm(step)) is not None else max(0.0, (total - step) / max(1, total - warmup))
    if kind == "cosine":

        def cosine(step: int) -> float:
            w = warm(step)
            if w is not None:
                return w
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return min_ratio + (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

        return cosine
    raise ValueError(f"scheduler.type: '{kind}' is not supported; use constant, linear or cosine")


def build_scheduler(spec: dict[str, Any] | None, optimizer: torch.optim.Optimizer):
    if spec is None:
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(spec))
