"""What a term of the objective is, and the registry of term kinds.

A plan lists its terms in order; the objective adds their weighted values in that order. A term owns its
parameters (projections): the session puts `param_groups()` in the optimizer after the student's groups, and
saves and restores `modules()` (one slot per module, None for an empty slot) in the checkpoint's
projections.safetensors, slots numbered across all terms in plan order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

Tensor = torch.Tensor


class PreflightError(ValueError):
    """The plan does not fit the models' outputs."""


@dataclass
class TermInputs:
    """What the terms of one micro-batch read."""

    results_S: dict[str, Any]
    # one entry per teacher (MultiTeacher averages their logits)
    results_T: list[dict[str, Any]]
    # cached teacher logits standing in for the teachers' forward (a cache hit), or None
    teacher_logits: list[Tensor] | None
    # the KD targets: the cached logits, else the teachers' (their mean over several teachers)
    target_logits: list[Tensor] | None
    # cached top-k teacher log-probabilities, or None
    teacher_topk: dict[str, Any] | None
    # the step's arguments (kdWeight, hardWeight: the scheduled weights)
    args: Mapping[str, Any]

    @property
    def first_T(self) -> dict[str, Any]:
        """The first teacher's results: intermediate features are matched against the first teacher."""
        return self.results_T[0] if self.results_T else {}


class Term:
    """One part of the objective. A kind subclasses this and registers with @term("kind")."""

    kind: ClassVar[str] = ""

    def __init__(self, spec: dict[str, Any], index: int, device: torch.device) -> None:
        """`spec` is the plan's entry, with every default filled in by the plan schema; `index` counts the terms of
        this kind before it (for messages such as intermediateMatches[index])."""
        self.spec = spec
        self.index = index

    def __call__(self, inputs: TermInputs) -> tuple[Tensor | None, dict[str, Tensor]]:
        """(the weighted value added to the total, or None when the term does not apply to this batch; its
        unweighted values by metric name)."""
        raise NotImplementedError

    # wrappers the forward goes through (DDP in a process group), by id() of the module they wrap; set by the session
    wrappers: dict[int, nn.Module] = {}  # noqa: RUF012 (read-only class default; the session assigns per instance)

    def forward_module(self, module: nn.Module | None) -> nn.Module | None:
        """The module to call in a forward: its DDP wrapper in a process group, else the module itself."""
        return None if module is None else self.wrappers.get(id(module), module)

    def modules(self) -> list[nn.Module | None]:
        """The modules this term trains, saved and restored with the checkpoint (None keeps a slot's number)."""
        return []

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups for this term's parameters, after the student's groups."""
        return []

    def preflight(self, inputs: TermInputs) -> None:
        """Checks on the first batch before step 0 (layer indices, widths); raise PreflightError to refuse."""


T = TypeVar("T", bound=type[Term])

TERMS: dict[str, type[Term]] = {}


def term(kind: str) -> Callable[[T], T]:
    """Registers a Term subclass under `kind`: `@term("kd") class KdTerm(Term): ...`."""

    def register(cls: T) -> T:
        existing = TERMS.get(kind)
        if existing is not None and existing is not cls:
            raise ValueError(f"term kind '{kind}' is already registered by {existing.__module__}.{existing.__name__}")
        cls.kind = kind
        TERMS[kind] = cls
        return cls

    return register


def unregister_term(kind: str) -> None:
    """Removes a registered kind (tests)."""
    TERMS.pop(kind, None)
