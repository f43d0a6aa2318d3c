"""call_python: the user's own function, by file reference, with tensors and JSON."""

from pathlib import Path

import pytest
import torch
from op_call import call_op

from textbrewer_worker import user_ops  # noqa: F401  (registers the op)
from textbrewer_worker.wire.ops import WorkerState


def test_call_python_passes_keyword_arguments_and_returns_the_result(tmp_path: Path) -> None:
    file = tmp_path / "fns.py"
    file.write_text("def mean_row(x, row):\n    return {'mean': x[row].mean(), 'rows': x.shape[0]}\n")
    out = call_op(
        WorkerState(device="cpu"), "call_python", {"ref": f"{file}:mean_row", "args": {"x": torch.eye(3), "row": 1}}
    )
    assert out["rows"] == 3 and torch.isclose(out["mean"], torch.tensor(1 / 3))


def test_call_python_errors_name_the_reference(tmp_path: Path) -> None:
    state = WorkerState(device="cpu")
    with pytest.raises(ValueError, match="runPython: file '.*missing.py' does not exist"):
        call_op(state, "call_python", {"ref": str(tmp_path / "missing.py") + ":f"})
    with pytest.raises(ValueError, match="runPython: 'nocolon' should be 'path/to/file.py:function'"):
        call_op(state, "call_python", {"ref": "nocolon"})
    with pytest.raises(ValueError, match=r"call_python: args.args must be object, got \[4\]"):
        call_op(state, "call_python", {"ref": "math:sqrt", "args": [4]})
