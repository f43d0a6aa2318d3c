"""Folders whose config names Python code of their own (``auto_map``): transformers would import and run that code
to build the model or tokenizer. Such files are refused at once unless the caller trusts them (TS
``trustRemoteCode: true``). transformers is always told ``trust_remote_code`` explicitly: left unset, it asks
"run the custom code? [y/N]" on stdin, which in the worker is Node's lifeline, and with a ``model_type`` it knows it
silently ignores the folder's code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .file_errors import read_failure, read_json

OPTION = "trustRemoteCode"


def _entries(auto_map: Any, only: str | None) -> list[str]:
    if isinstance(auto_map, dict):
        items = [(k, v) for k, v in auto_map.items() if only is None or k == only]
        return [f"{k}: {', '.join(str(x) for x in v if x) if isinstance(v, (list, tuple)) else v}" for k, v in items]
    if isinstance(auto_map, (list, tuple)) and only in (None, "AutoTokenizer"):
        return [str(x) for x in auto_map if x]
    return []


def check_file(
    file: Path, trust: bool, error: type[Exception], only: str | None = None, what: str = "model", field: str = "path"
) -> None:
    """Raises ``error`` when ``file`` (a JSON config) has an ``auto_map`` (only its entry ``only`` when given) and
    ``trust`` is false, or when the file is not valid JSON. A missing file is left to the loader."""
    if trust or not file.is_file():
        return
    try:
        data = read_json(file)
    except Exception as err:
        raise error(f"{field}: {read_failure(file, err)}") from err
    entries = _entries(data.get("auto_map"), only) if isinstance(data, dict) else []
    if entries:
        raise error(
            f"{field}: '{file}' has an auto_map ({'; '.join(entries)}) naming Python code that transformers would run "
            f"to build the {what}; pass {OPTION}: true only if you trust the code in '{file.parent}', or remove "
            f"auto_map from {file.name} to use transformers' own class for its model_type"
        )


def check_model_folder(folder: Path, trust: bool, error: type[Exception]) -> None:
    check_file(folder / "config.json", trust, error)


def check_tokenizer_folder(folder: Path, trust: bool, error: type[Exception]) -> None:
    check_file(folder / "tokenizer_config.json", trust, error, what="tokenizer")
    check_file(folder / "config.json", trust, error, only="AutoTokenizer", what="tokenizer")
