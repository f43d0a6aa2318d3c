"""The objective's terms: a registry of term kinds and the built-in ones (kd, hard_label, supervised, match, emd).

Each module of this package holds built-in kinds and is imported with it. A plan names kd, hard_label, supervised,
match and emd directly (`{"kind": "match", ...}`) and any other registered kind as
`{"kind": "registered", "name": ..., "python"?: "file.py:Class", "weight": ..., "options": {...}}`; `python` is
imported once, and the class it names registers itself with @term(name) (or is registered under `name`).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import torch

from ..pyref import resolve_ref
from .base import TERMS, PreflightError, Term, TermInputs, term, unregister_term

__all__ = ["TERMS", "PreflightError", "Term", "TermInputs", "build_terms", "term", "unregister_term"]

# every module of this package registers its kinds when imported: a new built-in term is one new file here
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

# the kinds the plan schema (src/train/plan.ts) names directly; every other kind is {kind: "registered", name}
PLAN_KINDS = frozenset({"kd", "hard_label", "supervised", "match", "emd", "causal_lm_kd"})


def term_class(spec: dict[str, Any], where: str) -> type[Term]:
    """The class of a plan's term: a kind the plan names, or a registered one (imported from `python` if given)."""
    kind = spec["kind"]
    if kind != "registered":
        if kind not in PLAN_KINDS:
            raise ValueError(
                f"{where}.kind: '{kind}' is not a term kind; use one of {', '.join(sorted(PLAN_KINDS))}, or "
                f"{{kind: 'registered', name: '{kind}'}} for a registered kind"
            )
        return TERMS[kind]
    name = spec["name"]
    if name in PLAN_KINDS:
        raise ValueError(f"{where}.name: '{name}' has its own schema in the plan; write {{kind: '{name}'}} instead")
    ref = spec.get("python")
    if ref is not None:
        found = resolve_ref(ref, f"{where}.python")
        if name not in TERMS and isinstance(found, type) and issubclass(found, Term):
            term(name)(found)
        elif TERMS.get(name) is not found:
            raise ValueError(
                f"{where}.python: '{ref}' is not a Term subclass registered as '{name}'; decorate the class with "
                f"@term('{name}') (from textbrewer_worker.terms import Term, term)"
            )
    cls = TERMS.get(name)
    if cls is None:
        known = sorted(set(TERMS) - PLAN_KINDS)
        raise ValueError(
            f"{where}.name: no term kind '{name}' is registered (registered: {', '.join(known) or 'none'}); give "
            "python: 'file.py:Class' with a Term subclass decorated @term(name)"
        )
    return cls


def build_terms(specs: list[dict[str, Any]], device: torch.device) -> list[Term]:
    """Builds the plan's terms in order (projections are created, and draw from the RNG, in this order)."""
    terms: list[Term] = []
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        cls = term_class(spec, f"terms[{i}]")
        index = seen.get(cls.kind, 0)
        seen[cls.kind] = index + 1
        terms.append(cls(spec, index, device))
    return terms
