"""What a model holds: how its weights were filled (init report) and how many parameters it has."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def _mismatch(name: str, checkpoint: list[int] | None, model_state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    own = model_state.get(name)
    return {"name": name, "checkpoint": checkpoint, "model": list(own.shape) if own is not None else None}


def init_report(model: torch.nn.Module) -> dict[str, Any] | None:
    """How the weights of a loaded or created model were filled, in the form the TypeScript ``InitReport`` types.

    ``source``: "checkpoint" (load_model of a folder or state dict), "initFrom" (create_model copying from a
    teacher) or "config" (create_model from a config alone: every weight is new). ``newlyInitialized``: the keys
    holding fresh random values (missing, or re-initialised because the shapes differ), in state-dict order;
    ``missing``, ``unexpected``, ``mismatched`` ({name, checkpoint, model} shapes). None for a TorchScript file, a
    pickled module or a factory without weights, where nothing was matched by name.
    """
    state = model.state_dict()
    load = getattr(model, "_textbrewer_load_report", None)
    if load is not None:
        fresh = set(load["missing_keys"]) | set(load["mismatched_keys"])
        return {
            "source": "checkpoint",
            "task": load["task"],
            "path": load["path"],
            "newlyInitialized": [k for k in state if k in fresh] + sorted(fresh - set(state)),
            "missing": list(load["missing_keys"]),
            "unexpected": list(load["unexpected_keys"]),
            "mismatched": [_mismatch(k, load["checkpoint_shapes"].get(k), state) for k in load["mismatched_keys"]],
        }
    made = getattr(model, "_textbrewer_init_report", None)
    if made is None:
        return None
    report: dict[str, Any] = {
        "source": made["source"],
        "task": made["task"],
        "newlyInitialized": list(made["random_init"]),
        "missing": list(made["missing"]),
        "unexpected": list(made["unexpected"]),
        "mismatched": [_mismatch(k, made["teacher_shapes"].get(k), state) for k in made["shape_mismatch"]],
    }
    if report["source"] == "initFrom":
        report.update(copied=dict(made["copied"]), layerPrefix=made["layer_prefix"], layerMap=made["layer_map"])
    return report


# --------------------------------------------------------------------------------------------- saving


# ------------------------------------------------------------------------------------------- counting


def num_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameter elements; a tensor shared by modules (tied weights) counts once."""
    seen: set[Any] = set()
    total = 0
    for param in model.parameters():
        if trainable_only and not param.requires_grad:
            continue
        if param.device.type == "meta" or param.numel() == 0:
            key: Any = ("id", id(param))
        else:
            key = (param.device, param.data_ptr(), tuple(param.shape), param.dtype)
        if key in seen:
            continue
        seen.add(key)
        total += param.numel()
    return total
