"""One-line causes for files that fail to read: the file, and why (missing, truncated, not the expected format,
pickled objects that weights-only loading refuses). Callers raise their own error class with these messages."""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

_UNPICKLER_DETAIL = re.compile(r"(?:WeightsUnpickler error:\s*)?(.+?)(?:\. Please use|\n\n|$)", re.DOTALL)


def root_cause(err: BaseException) -> BaseException:
    """The innermost exception of a chain: libraries wrap the error that says what is wrong with the file."""
    seen = err
    for _ in range(10):
        inner = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
        if inner is None:
            break
        seen = inner
    return seen


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def is_pickle_refusal(err: BaseException) -> bool:
    """torch.load(weights_only=True) met a Python object (a class, a function), not just tensors."""
    return isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err)


def is_read_error(err: BaseException) -> bool:
    """The chain ends in an error about a file's bytes (missing, truncated, not the format), not about the code."""
    from safetensors import SafetensorError

    inner = root_cause(err)
    if isinstance(inner, RuntimeError):
        return "PytorchStreamReader" in str(inner)
    return isinstance(inner, (OSError, EOFError, pickle.UnpicklingError, SafetensorError, UnicodeDecodeError))


def cause(err: BaseException) -> str:
    """Why a file could not be read, as the end of a sentence that starts with the file's name."""
    from safetensors import SafetensorError

    err = root_cause(err)
    if isinstance(err, FileNotFoundError):
        return "does not exist"
    if isinstance(err, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(err, PermissionError):
        return "cannot be read (permission denied)"
    if isinstance(err, json.JSONDecodeError):
        return f"is not valid JSON ({err.msg}: line {err.lineno} column {err.colno})"
    if isinstance(err, UnicodeDecodeError):
        return "is not UTF-8 text"
    if isinstance(err, OSError):
        return f"cannot be read ({err.strerror or _first_line(err)})"
    if isinstance(err, SafetensorError):
        return f"is not a valid safetensors file, it is truncated or damaged ({_first_line(err)})"
    if isinstance(err, EOFError):
        return "is empty or ends early (truncated)"
    if isinstance(err, pickle.UnpicklingError):
        text = str(err)
        match = _UNPICKLER_DETAIL.search(text[max(0, text.find("WeightsUnpickler error:")) :])
        detail = match.group(1).strip().replace("\n", " ") if match else _first_line(err)
        if is_pickle_refusal(err):
            return f"holds pickled Python objects that weights-only loading refuses ({detail})"
        return f"is not a PyTorch file or is damaged ({detail})"
    if isinstance(err, RuntimeError) and "PytorchStreamReader" in str(err):
        return f"is truncated or damaged ({_first_line(err)})"
    return f"could not be read ({type(err).__name__}: {_first_line(err)})"


def read_failure(path: str | Path, err: BaseException) -> str:
    """``'<path>' <cause>``: one line that names the file."""
    return f"'{path}' {cause(err)}"


def torch_archive_problem(path: Path) -> str | None:
    """A cheap look at a torch.save file (a zip archive): the cause when it is surely damaged, else None."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        return "is empty"
    if head == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        return "is truncated or damaged (a torch.save archive without its central directory)"
    return None


def read_json(path: str | Path) -> Any:
    """json.load of a small file; the caller turns an exception into a message with ``read_failure``."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
