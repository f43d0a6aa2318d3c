"""Device resolution and batch placement."""

from __future__ import annotations

from typing import Any

import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: '{name}' was asked for but CUDA is not available here; use 'cpu' or 'auto'")
    return device


def to_device(value: Any, device: torch.device) -> Any:
    """Moves every tensor in a nested batch to device (pinned + non_blocking on CUDA)."""
    if isinstance(value, torch.Tensor):
        if value.device == device:
            return value
        if device.type == "cuda":
            return value.pin_memory().to(device, non_blocking=True)
        return value.to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value
