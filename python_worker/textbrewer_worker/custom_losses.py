"""Losses users register from TypeScript with registerLoss({ name, kind, python: "file.py:fn" })."""

from __future__ import annotations

from typing import Any

from .losses import register_loss
from .pyref import resolve_ref

_SOURCES: dict[tuple[str, str], str] = {}


def ensure_registered(entries: list[dict[str, Any]]) -> None:
    """Imports each user loss once; the same name from another file is an error."""
    for entry in entries:
        kind, name, ref = entry["kind"], entry["name"], entry["python"]
        key = (kind, name)
        if _SOURCES.get(key) == ref:
            continue
        if key in _SOURCES:
            raise ValueError(
                f"registerLoss: the {kind} loss '{name}' is already registered from {_SOURCES[key]}"
            )
        fn = resolve_ref(ref, f"registerLoss('{name}').python")
        register_loss(kind, name, fn)
        _SOURCES[key] = ref
