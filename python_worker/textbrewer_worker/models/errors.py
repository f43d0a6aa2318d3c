"""The errors of model loading and saving, and the helpers that quote values in their messages."""

from __future__ import annotations

from typing import Any

_MAX_LISTED = 5


class ModelLoadError(ValueError):
    """A model could not be loaded or created; the message names the field, the value and the fix."""


class ModelSaveError(ValueError):
    """A model could not be saved; the message names the field, the value and the fix."""


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" (and {more} more)" if more > 0 else "")


def _short_repr(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
