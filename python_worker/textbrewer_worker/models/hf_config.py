"""Hugging Face configs from a dict (with ``model_type``) or from a config.json path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..remote_code import check_file
from .errors import ModelLoadError, _short_repr

_CONFIG_FILE = "config.json"


def _config_from_dict(config: Mapping[str, Any]) -> Any:
    from transformers import AutoConfig

    values = dict(config)
    model_type = values.pop("model_type", None)
    if not model_type:
        raise ModelLoadError(
            f"config: {_short_repr(config)} has no 'model_type'; give a Hugging Face config dict with "
            "model_type (e.g. {model_type: 'bert', ...}) or a path to a config.json"
        )
    try:
        return AutoConfig.for_model(model_type, **values)
    except ValueError as err:
        raise ModelLoadError(
            f"config: model_type '{model_type}' is not known to transformers ({err}); check the spelling "
            "(e.g. 'bert', 'roberta', 'gpt2')"
        ) from err


def _config_from_path(path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"config: '{path}' does not exist; give a config dict or an existing config.json path")
    if p.is_dir() and not (p / _CONFIG_FILE).is_file():
        raise ModelLoadError(f"config: folder '{path}' has no config.json; point to the config.json itself")
    check_file(p / _CONFIG_FILE if p.is_dir() else p, trust_remote_code, ModelLoadError, field="config")
    try:
        return AutoConfig.from_pretrained(str(p), local_files_only=True, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise ModelLoadError(f"config: '{path}' could not be read as a Hugging Face config ({err})") from err


def _resolve_config(config: Mapping[str, Any] | str | os.PathLike[str], trust_remote_code: bool = False) -> Any:
    if isinstance(config, Mapping):
        return _config_from_dict(config)
    if isinstance(config, (str, os.PathLike)):
        return _config_from_path(os.fspath(config), trust_remote_code)
    raise ModelLoadError(f"config: expected a config dict or a path to a config.json, got {type(config).__name__}")
