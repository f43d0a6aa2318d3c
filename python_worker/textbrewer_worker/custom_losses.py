"""Losses users register from TypeScript with registerLoss({ name, kind, python: "file.py:fn" }).

The function may carry its metadata with the @loss decorator (textbrewer_worker.losses.loss), which registers it
when its file is imported; a plain function is registered here with the default metadata.
"""

from __future__ import annotations

from typing import Any

from .builtin_losses import BUILTIN_LOSSES
from .losses import get_loss, register_loss
from .pyref import resolve_ref

_SOURCES: dict[tuple[str, str], str] = {}
_BUILTIN = {(info.kind, info.name) for info in BUILTIN_LOSSES}


def ensure_registered(entries: list[dict[str, Any]]) -> None:
    """Imports each user loss once; the same name from another file, or a built-in's name, is an error."""
    for entry in entries:
        kind, name, ref = entry["kind"], entry["name"], entry["python"]
        key = (kind, name)
        if _SOURCES.get(key) == ref:
            continue
        if key in _SOURCES:
            raise ValueError(f"registerLoss: the {kind} loss '{name}' is already registered from {_SOURCES[key]}")
        if key in _BUILTIN:
            raise ValueError(f"registerLoss: '{name}' is a built-in {kind} loss; give your loss another name")
        fn = resolve_ref(ref, f"registerLoss('{name}').python")
        declared = getattr(fn, "loss_info", None)
        if declared is None:
            register_loss(kind, name, fn)
        elif not any(info.kind == kind and info.name == name for info in declared):
            as_declared = ", ".join(f"{info.kind} loss '{info.name}'" for info in declared)
            raise ValueError(
                f"registerLoss('{name}'): {ref} is decorated as {as_declared}; register it with that name and kind"
            )
        elif get_loss(kind, name) is not fn:
            raise ValueError(f"registerLoss: the {kind} loss '{name}' is already registered by another function")
        _SOURCES[key] = ref
