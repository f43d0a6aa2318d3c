"""Running the user's own Python in the worker.

    call_python {ref, args}     imports "path/to/file.py:function" (or "package.module:function") once and returns
                                function(**args); tensors in args arrive as torch tensors, tensors in the result go
                                back as tensors, everything else as JSON

The reference comes from the authenticated client, as for model factories and registered losses; nothing in it is
evaluated as code beyond importing the named file."""

from __future__ import annotations

from typing import Any

from .pyref import resolve_ref
from .wire.ops import WorkerState, op
from .wire.ops_types import CallPythonArgs


@op("call_python")
def call_python(state: WorkerState, args: CallPythonArgs) -> Any:
    fn = resolve_ref(args["ref"], "runPython")
    return fn(**args["args"])
