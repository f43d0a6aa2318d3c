"""FSDP2 (`fully_shard`) for a student too big to replicate: each rank holds a shard of its parameters, gradients
and optimizer state while it trains; checkpoints hold the full weights (gathered on rank 0).

Sharding changes the student's class and parameters in place. A skeleton of the plain module (its parameters on
the meta device, no memory) is taken before, and filled with the trained weights when the run ends, so after
train() the handle names a plain module again that rank 0 answers alone (predict, save_model).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor


def shard_units(model: nn.Module) -> list[nn.Module]:
    """The submodules sharded on their own (all-gathered one at a time in the forward): a Hugging Face model's
    `_no_split_modules` classes (its transformer blocks), else the items of its ModuleLists."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    if names:
        return [m for m in model.modules() if type(m).__name__ in names]
    return [item for m in model.modules() if isinstance(m, nn.ModuleList) for item in m]


def skeleton(model: nn.Module) -> nn.Module:
    """A copy of `model` whose parameters live on the meta device (shared ones stay shared); buffers are copied."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    return copy.deepcopy(model, memo)


def shard(model: nn.Module) -> nn.Module:
    """Shards `model` in place over every rank of the process group (the plain skeleton it had is returned)."""
    plain = skeleton(model)
    for unit in shard_units(model):
        fully_shard(unit)
    fully_shard(model)
    return plain


def is_sharded(model: nn.Module) -> bool:
    return isinstance(model, FSDPModule)


def _gathered(model: nn.Module, cpu_offload: bool) -> dict[str, torch.Tensor]:
    """The model's full state dict (every rank must call it); with `cpu_offload` on rank 0's CPU alone."""
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=cpu_offload))
    return {name: value for name, value in state.items() if isinstance(value, torch.Tensor)}


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The full weights on the CPU of rank 0 (empty on the others); every rank must call it."""
    return _gathered(model, cpu_offload=True)


def full_optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state dict with each sharded tensor gathered whole, in the layout of a single worker's (so a
    checkpoint reads the same either way); every rank must call it, in the same order."""
    state = optimizer.state_dict()
    gathered = {
        index: {k: v.full_tensor() if isinstance(v, DTensor) else v for k, v in values.items()}
        for index, values in state["state"].items()
    }
    return {**state, "state": gathered}


def unshard(sharded: nn.Module, plain: nn.Module, device: torch.device) -> nn.Module:
    """`plain` (the skeleton) holding the trained weights of `sharded`; every rank must call it."""
    full = _gathered(sharded, cpu_offload=False)
    by_name = dict(plain.named_parameters(remove_duplicate=False))
    filled: dict[int, nn.Parameter] = {}
    for name, param in by_name.items():
        # a shared parameter is in the state dict under one of its names at least
        if id(param) not in filled and name in full:
            filled[id(param)] = nn.Parameter(full[name].to(device), requires_grad=param.requires_grad)
    for name, param in by_name.items():
        if id(param) not in filled:
            raise KeyError(f"{name}: the sharded student's state dict has no value for this parameter")
        owner, _, attr = name.rpartition(".")
        setattr(plain.get_submodule(owner), attr, filled[id(param)])
    with torch.no_grad():
        for name, buffer in plain.named_buffers():
            if name in full:
                buffer.copy_(full[name])
    plain.to(device)
    plain.train(sharded.training)
    return plain
