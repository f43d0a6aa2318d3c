"""BERT-of-Theseus (Xu et al., 2020): progressive module replacement.

    theseus_create {teacher, numLayers, groups?, layerMap?, replacement, seed}  -> a handle to a TheseusModel
    theseus_extract {model}                                                      -> a handle to the successor alone

The predecessor (a copy of the teacher, so the teacher's handle is left as it is) keeps its embeddings and head; its
stack of layers is cut into groups, one per successor layer. In a training-mode forward each group is replaced by its
successor layer with probability p (one Bernoulli draw per group per forward); p follows the schedule: constant, or
the paper's linear curriculum p = min(1, b + k·t) with t the number of training forwards so far. The predecessor's
layers are frozen; the successor layers and the shared embeddings and head are trained on the task loss. An eval-mode
forward runs the successor alone (every group replaced), which is the model that extract returns as a standalone
Hugging Face model.

The draws come from the module's own generator, whose state and the step count are buffers: they are saved with the
checkpoint's weights and restored on resume, so a resumed run draws what the uninterrupted one would have.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from .models import create_model
from .models.create import _find_layer_prefix
from .wire.ops import WorkerState, describe_handle, op
from .wire.ops_types import (
    TheseusCreateArgs,
    TheseusExtractArgs,
    TheseusExtractResult,
    TheseusStateArgs,
    TheseusStateResult,
)


@dataclass(frozen=True)
class Replacement:
    """p(t) = min(1, base + slope·t); a constant schedule has slope 0."""

    base: float
    slope: float

    @staticmethod
    def read(spec: Any) -> Replacement:
        if not isinstance(spec, dict) or spec.get("type") not in ("constant", "linear"):
            raise ValueError(
                f"replacement: expected {{type: 'constant', rate}} or {{type: 'linear', base, k}}, got {spec!r}"
            )
        if spec["type"] == "constant":
            rate = spec.get("rate")
            if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ValueError(f"replacement.rate: {rate!r} must be a probability in [0, 1]")
            return Replacement(float(rate), 0.0)
        base, slope = spec.get("base"), spec.get("k")
        if not isinstance(base, (int, float)) or not 0 <= base <= 1:
            raise ValueError(f"replacement.base: {base!r} must be a probability in [0, 1]")
        if not isinstance(slope, (int, float)) or slope < 0:
            raise ValueError(f"replacement.k: {slope!r} must be a number ≥ 0 (the rate's increase per training step)")
        return Replacement(float(base), float(slope))

    def rate(self, step: int) -> float:
        return min(1.0, self.base + self.slope * step)


@dataclass(frozen=True)
class TheseusArgs:
    teacher: str
    num_layers: int
    groups: list[tuple[int, int]] | None
    layer_map: list[int] | None
    replacement: Replacement
    seed: int

    @staticmethod
    def read(args: dict[str, Any]) -> TheseusArgs:
        n = args.get("numLayers")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"numLayers: {n!r} must be a positive integer (the successor's number of layers)")
        groups = args["groups"]
        seed = args["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed: {seed!r} must be an integer")
        return TheseusArgs(
            teacher=str(args.get("teacher")),
            num_layers=n,
            groups=None if groups is None else [(int(a), int(b)) for a, b in groups],
            layer_map=args["layerMap"],
            replacement=Replacement.read(args.get("replacement")),
            seed=seed,
        )


def even_groups(layers: int, k: int) -> list[tuple[int, int]]:
    """Cuts layer indices 0..layers-1 into k contiguous groups as even as possible (the first ones get the extra)."""
    size, extra = divmod(layers, k)
    out: list[tuple[int, int]] = []
    start = 0
    for i in range(k):
        end = start + size + (1 if i < extra else 0)
        out.append((start, end - 1))
        start = end
    return out


def check_groups(groups: list[tuple[int, int]], layers: int, k: int) -> None:
    shown = [list(g) for g in groups]
    if len(groups) != k:
        raise ValueError(
            f"groups: {shown} has {len(groups)} groups for {k} successor layers; give one [first, last] per layer"
        )
    expected = 0
    for a, b in groups:
        if a != expected or b < a:
            raise ValueError(
                f"groups: {shown} must cut the teacher's layers 0..{layers - 1} into contiguous groups in order "
                f"(a group starts at {expected})"
            )
        expected = b + 1
    if expected != layers:
        raise ValueError(f"groups: {shown} cover layers 0..{expected - 1} but the teacher has 0..{layers - 1}")


class TheseusModel(nn.Module):
    """A predecessor whose groups of layers are swapped for successor layers at random while training."""

    theseus_rng_state: torch.Tensor
    theseus_step: torch.Tensor

    def __init__(
        self,
        predecessor: nn.Module,
        successor: nn.Module,
        prefix: str,
        groups: list[tuple[int, int]],
        replacement: Replacement,
        seed: int,
    ) -> None:
        super().__init__()
        self.predecessor = predecessor
        self.successor = successor
        self.prefix = prefix
        self.groups = groups
        self.replacement = replacement
        self.generator = torch.Generator().manual_seed(seed)
        self.register_buffer("theseus_rng_state", self.generator.get_state())
        self.register_buffer("theseus_step", torch.zeros((), dtype=torch.int64))
        for p in self._layers(predecessor).parameters():
            p.requires_grad_(False)
        # The successor's own embeddings and head stay unused until extract copies the shared ones in.
        successor_layers = {id(p) for p in self._layers(successor).parameters()}
        for p in successor.parameters():
            if id(p) not in successor_layers:
                p.requires_grad_(False)
        self.config = getattr(predecessor, "config", None)
        self.last_replaced: list[bool] = []

    def _parent(self, model: nn.Module) -> tuple[nn.Module, str]:
        parent_name, _, attr = self.prefix.rpartition(".")
        return (model.get_submodule(parent_name) if parent_name else model), attr

    def _layers(self, model: nn.Module) -> nn.ModuleList:
        parent, attr = self._parent(model)
        layers = getattr(parent, attr)
        assert isinstance(layers, nn.ModuleList)
        return layers

    def draw(self) -> list[bool]:
        """One Bernoulli draw per group at this step's rate, from the module's generator (kept in its buffers)."""
        self.generator.set_state(self.theseus_rng_state.cpu())
        rate = self.replacement.rate(int(self.theseus_step))
        replaced = [bool(u < rate) for u in torch.rand(len(self.groups), generator=self.generator, dtype=torch.float64)]
        self.theseus_rng_state.copy_(self.generator.get_state())
        self.theseus_step.add_(1)
        return replaced

    def mixed_layers(self, replaced: list[bool]) -> nn.ModuleList:
        old = self._layers(self.predecessor)
        new = self._layers(self.successor)
        mixed: list[nn.Module] = []
        for i, ((a, b), swap) in enumerate(zip(self.groups, replaced)):
            mixed.extend([new[i]] if swap else [old[j] for j in range(a, b + 1)])
        return nn.ModuleList(mixed)

    @contextmanager
    def _swapped(self, layers: nn.ModuleList) -> Iterator[None]:
        parent, attr = self._parent(self.predecessor)
        original = getattr(parent, attr)
        # plain attribute swap: the registered modules stay where they are for state_dict and parameters()
        parent._modules[attr] = layers
        try:
            yield
        finally:
            parent._modules[attr] = original

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        replaced = self.draw() if self.training else [True] * len(self.groups)
        self.last_replaced = replaced
        with self._swapped(self.mixed_layers(replaced)):
            return self.predecessor(*args, **kwargs)

    def extract(self) -> nn.Module:
        """The successor as a standalone model: its layers, with the predecessor's (trained) embeddings and head."""
        model = copy.deepcopy(self.successor)
        shared = self.predecessor.state_dict()
        layer_prefix = f"{self.prefix}."
        with torch.no_grad():
            for key, value in model.state_dict().items():
                if not key.startswith(layer_prefix) and key in shared:
                    value.copy_(shared[key])
        for p in model.parameters():
            p.requires_grad_(True)
        model.train(self.training)
        return model


def build(teacher: nn.Module, a: TheseusArgs) -> TheseusModel:
    config = getattr(teacher, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise ValueError(f"teacher: a {type(teacher).__name__} is not a Hugging Face model; Theseus needs one")
    layers = getattr(config, "num_hidden_layers", None)
    if isinstance(layers, int) and a.num_layers > layers:
        raise ValueError(f"numLayers: {a.num_layers} but the teacher has {layers} layers; use 1..{layers}")
    successor = create_model({"num_hidden_layers": a.num_layers}, init_from=teacher, layer_map=a.layer_map)
    prefix = _find_layer_prefix(successor, teacher)
    if prefix is None:
        raise ValueError(f"teacher: no stack of layers found in {type(teacher).__name__}")
    layers = len(teacher.get_submodule(prefix))  # type: ignore[arg-type]
    groups = a.groups if a.groups is not None else even_groups(layers, a.num_layers)
    check_groups(groups, layers, a.num_layers)
    predecessor = copy.deepcopy(teacher)
    model = TheseusModel(predecessor, successor, prefix, groups, a.replacement, a.seed)
    model.train(teacher.training)
    return model


@op("theseus_create")
def theseus_create(state: WorkerState, args: TheseusCreateArgs) -> dict[str, Any]:
    a = TheseusArgs.read(dict(args))
    model = build(state.model({"model": a.teacher}), a).to(state.torch_device)
    handle = state.add_model(model)
    layer_map = model.successor._textbrewer_init_report["layer_map"]  # type: ignore[index]
    return {
        **describe_handle(state, handle),
        "initReport": None,
        "groups": [list(g) for g in model.groups],
        "layerMap": layer_map,
    }


@op("theseus_state")
def theseus_state(state: WorkerState, args: TheseusStateArgs) -> TheseusStateResult:
    model = state.model(args)
    if not isinstance(model, TheseusModel):
        raise TypeError(f"model: a {type(model).__name__} is not a Theseus model (made by theseus_create)")
    step = int(model.theseus_step)
    return {"step": step, "rate": model.replacement.rate(step), "lastReplaced": model.last_replaced}


@op("theseus_extract")
def theseus_extract(state: WorkerState, args: TheseusExtractArgs) -> TheseusExtractResult:
    model = state.model(args)
    if not isinstance(model, TheseusModel):
        raise TypeError(f"model: a {type(model).__name__} is not a Theseus model (made by theseus_create)")
    successor = model.extract().to(state.torch_device)
    return cast(TheseusExtractResult, {**describe_handle(state, state.add_model(successor)), "initReport": None})
