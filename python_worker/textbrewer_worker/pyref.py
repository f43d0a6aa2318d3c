"""User Python code named by reference: "path/to/file.py:function" or "package.module:function".

Each file is imported once per worker (relative paths resolve against the worker's working directory).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

_MODULES: dict[str, ModuleType] = {}


def import_file(file: Path, field: str, error: type[Exception]) -> ModuleType:
    key = str(file.resolve())
    cached = _MODULES.get(key)
    if cached is not None:
        return cached
    stem = re.sub(r"\W", "_", file.stem) or "module"
    module_name = f"textbrewer_user_{stem}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(module_name, key)
    if spec is None or spec.loader is None:
        raise error(f"{field}: cannot import '{file}' as a Python module; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(module_name, None)
        raise
    _MODULES[key] = module
    return module


def resolve_ref(ref: Any, field: str, error: type[Exception] = ValueError) -> Callable[..., Any]:
    """The callable `ref` names; errors name `field` and say what a reference looks like."""
    usage = f"{field}: '{ref}' should be 'path/to/file.py:function' (or 'package.module:function')"
    if not isinstance(ref, str) or ":" not in ref:
        raise error(usage)
    target, _, fn_name = ref.rpartition(":")
    if not target or not fn_name:
        raise error(usage)
    if target.endswith(".py"):
        file = Path(target).expanduser()
        if not file.is_file():
            raise error(
                f"{field}: file '{target}' does not exist (relative paths are resolved against the worker's "
                f"working directory '{os.getcwd()}'); give an existing .py file"
            )
        module = import_file(file, field, error)
    else:
        try:
            module = importlib.import_module(target)
        except Exception as err:
            raise error(
                f"{field}: module '{target}' could not be imported ({type(err).__name__}: {err}); "
                "give 'path/to/file.py:function' or an importable module"
            ) from err
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise error(f"{field}: '{target}' has no function '{fn_name}'; callables there: {', '.join(names) or 'none'}")
    return fn
