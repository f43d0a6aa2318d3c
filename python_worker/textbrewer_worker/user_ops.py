"""Running the user's own Python in the worker.

    call_python {ref, args}     imports "path/to/file.py:function" (or "package.module:function") once and returns
                                function(**args); tensors in args arrive as torch tensors, tensors in the result go
                                back as tensors, everything else as JSON

The reference comes from the authenticated client, as for model factories and registered losses; nothing in it is
evaluated as code beyond importing the named file."""

from __future__ import annotations

from typing import Any

from .ops import WorkerState, op, require
from .pyref import resolve_ref


@op("call_python")
def call_python(state: WorkerState, args: dict[str, Any]) -> Any:
    ref = require(args, "ref", str)
    kwargs = args.get("args", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"runPython: args must be an object of keyword arguments, got {type(kwargs).__name__}")
    fn = resolve_ref(ref, "runPython")
    return fn(**kwargs)
