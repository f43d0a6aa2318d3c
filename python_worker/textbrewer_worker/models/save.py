"""Saving a model into a folder atomically."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file
from safetensors.torch import save_model as _safetensors_save_model

from .errors import ModelSaveError
from .tasks import _is_hf_model

# Files a checkpoint folder written by save_model may contain; on overwrite these are replaced,
# anything else in the folder (a tokenizer, notes) is carried over into the new folder.
_CHECKPOINT_FILE_RE = re.compile(
    r"^(config\.json|generation_config\.json"
    r"|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json"
    r"|pytorch_model(-\d+-of-\d+)?\.bin|pytorch_model\.bin\.index\.json)$"
)


def write_model_files(model: torch.nn.Module, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Write the model's files into an existing folder (no atomic swap; see save_model); `state_dict` stands in for
    the model's own weights (a sharded model's, gathered whole)."""
    if _is_hf_model(model):
        model.save_pretrained(str(folder), safe_serialization=True, state_dict=state_dict)  # type: ignore[operator]
    elif state_dict is not None:
        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(folder / "model.safetensors"))
    else:
        # save_model drops duplicate names of shared tensors; load_model accepts that (tied keys).
        _safetensors_save_model(model, str(folder / "model.safetensors"), force_contiguous=True)


def save_model(model: torch.nn.Module, directory: str, fill: Callable[[Path], None] | None = None) -> list[str]:
    """Save ``model`` into ``directory`` atomically and return the names of the files written.

    HF models: ``save_pretrained(safe_serialization=True)`` (config.json + model.safetensors, sharded
    if large). Other modules: their state dict as ``model.safetensors`` (shared tensors stored once).
    The files are written into a hidden sibling folder that is then renamed into place. An existing
    ``directory`` is replaced: its old checkpoint files (config.json, model*.safetensors, pytorch_model*.bin,
    index files) go, any other files in it (e.g. a tokenizer) are carried over into the new folder, unless ``fill``
    (called with the temporary folder once the model's files are in it) writes a file of the same name.
    """
    if not isinstance(model, torch.nn.Module):
        raise ModelSaveError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ModelSaveError(f"directory: '{directory}' exists and is a file; give a folder path")
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelSaveError(f"directory: cannot create parent folder '{parent}' ({err})") from err
    token = uuid.uuid4().hex[:12]
    tmp = parent / f".{target.name}.tmp-{token}"
    old = parent / f".{target.name}.old-{token}"
    written: list[str] = []
    carried: list[str] = []
    try:
        tmp.mkdir()
        write_model_files(model, tmp)
        if fill is not None:
            fill(tmp)
        written = sorted(entry.name for entry in tmp.iterdir())
        if target.exists():
            for entry in sorted(target.iterdir()):
                if entry.name not in written and not _CHECKPOINT_FILE_RE.match(entry.name):
                    os.rename(entry, tmp / entry.name)
                    carried.append(entry.name)
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except OSError:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except Exception as err:
        if tmp.exists():
            # Give the carried-over files back to the old folder before dropping the temporary one.
            for name in carried:
                if (tmp / name).exists() and target.is_dir() and not (target / name).exists():
                    os.rename(tmp / name, target / name)
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, ModelSaveError):
            raise
        raise ModelSaveError(f"directory: saving into '{directory}' failed ({type(err).__name__}: {err})") from err
    return written
