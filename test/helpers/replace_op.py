"""Replaces a worker op's handler from inside the worker (through runPython), for tests of what TypeScript does with
a result that does not fit the op's schema."""

from typing import Any

from textbrewer_worker.wire.ops import OPS

_saved: dict[str, Any] = {}


def answer_with(op: str, value: Any) -> None:
    """From now on `op` returns `value`, whatever its args."""
    _saved.setdefault(op, OPS[op])
    OPS[op] = lambda state, args: value


def restore(op: str) -> None:
    OPS[op] = _saved.pop(op)
