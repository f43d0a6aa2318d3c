"""Describes a checkpoint without building the model: config, tensor names/shapes/dtypes, parameter count.

Returns JSON text so a caller on another bridge gets plain data (never tensors). A file that cannot be read raises
``CheckpointInspectError`` with one line that names it and the cause.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .file_errors import read_failure, read_json


class CheckpointInspectError(ValueError):
    """The checkpoint is missing or one of its files cannot be read; the message names the file."""


WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


def _safetensors_tensors(path: Path) -> dict[str, dict[str, Any]]:
    from safetensors import safe_open

    out: dict[str, dict[str, Any]] = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():  # noqa: SIM118  (safe_open is not iterable: keys() is how it lists)
            sl = f.get_slice(name)
            out[name] = {"shape": list(sl.get_shape()), "dtype": str(sl.get_dtype())}
    return out


def _torch_tensors(path: Path) -> dict[str, dict[str, Any]]:
    import torch

    state = torch.load(str(path), map_location="meta", weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointInspectError(f"path: '{path}' holds a {type(state).__name__}, not a state dict")
    return {
        k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
        for k, v in state.items()
        if hasattr(v, "shape")
    }


def describe_checkpoint(path: str) -> str:
    p = Path(path)
    if not p.exists():
        raise CheckpointInspectError(f"path: '{path}' does not exist")
    info: dict[str, Any] = {"path": str(p.resolve())}
    weights: Path | None = None
    if p.is_dir():
        info["kind"] = "hf-folder"
        info["files"] = sorted(x.name for x in p.iterdir() if x.is_file())
        config = p / "config.json"
        if config.exists():
            try:
                cfg = read_json(config)
            except Exception as err:
                raise CheckpointInspectError(f"path: {read_failure(config, err)}") from err
            if not isinstance(cfg, dict):
                raise CheckpointInspectError(f"path: '{config}' holds a JSON {type(cfg).__name__}, not an object")
            info["config"] = cfg
            info["modelType"] = cfg.get("model_type")
            info["architectures"] = cfg.get("architectures")
        weights = next((p / f for f in WEIGHT_FILES[:2] if (p / f).exists()), None)
        if weights is None and not any(p.glob("*.index.json")):
            raise CheckpointInspectError(
                f"path: '{path}' is not a checkpoint folder (no model.safetensors or pytorch_model.bin)"
            )
    else:
        weights = p
        info["kind"] = {".safetensors": "safetensors", ".pt": "torch", ".bin": "torch", ".pth": "torch"}.get(
            p.suffix, "unknown"
        )
    if weights is not None:
        try:
            tensors = _safetensors_tensors(weights) if weights.suffix == ".safetensors" else _torch_tensors(weights)
        except CheckpointInspectError:
            raise
        except Exception as err:
            raise CheckpointInspectError(f"path: {read_failure(weights, err)}") from err
        numel = 1
        total = 0
        dtypes: dict[str, int] = {}
        for meta in tensors.values():
            numel = 1
            for d in meta["shape"]:
                numel *= d
            total += numel
            dtypes[meta["dtype"]] = dtypes.get(meta["dtype"], 0) + numel
        info["weightsFile"] = weights.name
        info["numTensors"] = len(tensors)
        info["numParameters"] = total
        info["dtypes"] = dtypes
        info["tensors"] = tensors
        info["sizeBytes"] = weights.stat().st_size
    return json.dumps(info)
