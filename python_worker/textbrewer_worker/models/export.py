"""Complete exports: one folder that ``from_pretrained`` and ``transformers.pipeline()`` load as is.

The folder holds the model's files (config.json, model.safetensors), the tokenizer's files, and a model card
(README.md) when given; label names go into config.json as ``id2label``/``label2id``. Everything is written into the
temporary folder of ``save_model``, so the export appears whole or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import ModelSaveError, _short_repr
from .save import save_model
from .tasks import _is_hf_model

README = "README.md"


def _check_labels(model: torch.nn.Module, labels: Sequence[str]) -> list[str]:
    if not isinstance(labels, (list, tuple)) or not all(isinstance(name, str) and name for name in labels):
        raise ModelSaveError(f"labels: expected a list of non-empty label names, got {_short_repr(labels)}")
    if len(set(labels)) != len(labels):
        doubled = sorted({name for name in labels if labels.count(name) > 1})
        raise ModelSaveError(f"labels: {list(labels)} names {doubled} more than once; give each label its own name")
    count = getattr(getattr(model, "config", None), "num_labels", None)
    if isinstance(count, int) and count != len(labels):
        raise ModelSaveError(
            f"labels: {list(labels)} has {len(labels)} names but the model has {count} labels (config.num_labels); "
            "give one name per label, in the order of the logits"
        )
    return list(labels)


def _write_labels(config_file: Path, labels: list[str]) -> None:
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["id2label"] = {str(i): name for i, name in enumerate(labels)}
    config["label2id"] = {name: i for i, name in enumerate(labels)}
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def export_model(
    model: torch.nn.Module,
    directory: str,
    tokenizer: Any = None,
    readme: str | None = None,
    labels: Sequence[str] | None = None,
) -> list[str]:
    """Save ``model`` with its tokenizer, a model card and label names into ``directory`` (atomically, as
    ``save_model``); returns the names of the files written."""
    if not _is_hf_model(model):
        raise ModelSaveError(
            f"model: a {type(model).__name__} is not a Hugging Face model, so from_pretrained and pipeline() cannot "
            "load it; save its weights with save(dir) and no options"
        )
    names = None if labels is None else _check_labels(model, labels)
    if tokenizer is not None and not hasattr(tokenizer, "save_pretrained"):
        raise ModelSaveError(f"tokenizer: a {type(tokenizer).__name__} cannot be saved; give a tokenizer handle")

    def fill(folder: Path) -> None:
        if names is not None:
            _write_labels(folder / "config.json", names)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(folder))
        if readme is not None:
            (folder / README).write_text(readme, encoding="utf-8")

    return save_model(model, directory, fill)
