"""TextBrewer's ``utils.display_parameters`` table, reimplemented.

The table is a tree over the state-dict keys split on '.', buffers included. Every leaf holds
``[numel, MB]`` with ``MB = numel * element_size / 2**20``; parents hold the sums of their leaves.
A tensor whose ``data_ptr`` was already seen (tied weights) counts 0 and its name gets "(shared)".

Layout, as in TextBrewer 0.2.1:

- the text starts with an empty line, then a header line;
- columns are tab-separated: LAYER NAME (left-aligned, padded to the longest indented name + 1),
  #PARAMS (width 15, thousands separators), RATIO (% of the root, 2 dp, width 10), MEM(MB) (2 dp, width 8);
- the root is called ``model``; the indent starts at ``--`` and grows by two spaces per level;
- a node with exactly one child prints only its (padded) name, without ':' and without numbers;
- at ``max_level`` a node prints its totals and its children are not shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["ParamNode", "build_parameter_tree", "display_parameters", "parameter_tree"]

_ROOT_NAME = "model"
_FIRST_INDENT = "--"
_INDENT_STEP = "  "


class ParamNode:
    """One node of the parameter tree: a state-dict key prefix."""

    __slots__ = ("children", "fullname", "mb", "name", "numel", "shared")

    def __init__(self, name: str, fullname: str) -> None:
        self.name = name  # display name; gets "(shared)" appended for a repeated tensor
        self.fullname = fullname
        self.numel = 0
        self.mb = 0.0
        self.shared = False
        self.children: dict[str, ParamNode] = {}

    def to_dict(self, total: int | None = None) -> dict[str, Any]:
        total = self.numel if total is None else total
        return {
            "name": self.name,
            "fullname": self.fullname,
            "params": self.numel,
            "ratio": (self.numel / total) if total else 0.0,
            "mem_mb": self.mb,
            "shared": self.shared,
            "children": [child.to_dict(total) for child in self.children.values()],
        }


def _state_dict_of(model_or_state_dict: Any) -> Mapping[str, torch.Tensor]:
    if isinstance(model_or_state_dict, torch.nn.Module):
        return model_or_state_dict.state_dict()
    if isinstance(model_or_state_dict, Mapping):
        for key, value in model_or_state_dict.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"display_parameters: state dict entry {key!r} is a {type(value).__name__}, not a "
                    "tensor; pass a torch.nn.Module or a dict of name -> tensor"
                )
        return model_or_state_dict
    raise TypeError(
        "display_parameters: model should be either a torch.nn.Module or a state dict (dict of name -> "
        f"tensor), got {type(model_or_state_dict).__name__}"
    )


def build_parameter_tree(model_or_state_dict: Any) -> ParamNode:
    """Build the tree of parameter counts over the state-dict keys (see the module docstring)."""
    state_dict = _state_dict_of(model_or_state_dict)
    root = ParamNode(_ROOT_NAME, _ROOT_NAME)
    seen_ptrs: set[int] = set()
    for key, tensor in state_dict.items():
        parts = key.split(".")
        path = [root]
        node = root
        for i, part in enumerate(parts):
            child = node.children.get(part)
            if child is None:
                child = ParamNode(part, ".".join(parts[: i + 1]))
                node.children[part] = child
            node = child
            path.append(node)
        ptr = tensor.data_ptr()
        if ptr in seen_ptrs:
            numel, mb = 0, 0.0
            node.name += "(shared)"
            node.fullname += "(shared)"
            node.shared = True
        else:
            seen_ptrs.add(ptr)
            numel = tensor.numel()
            mb = numel * tensor.element_size() / 1024 / 1024
        # The leaf's own value is set (not added); its ancestors accumulate.
        node.numel, node.mb = numel, mb
        for ancestor in path[:-1]:
            ancestor.numel += numel
            ancestor.mb += mb
    return root


def _name_width(node: ParamNode, level: int, max_level: int | None) -> int:
    width = len(_FIRST_INDENT) + level * len(_INDENT_STEP) + len(node.name)
    if max_level is not None and level >= max_level:
        return width
    for child in node.children.values():
        width = max(width, _name_width(child, level + 1, max_level))
    return width


def _ratio(value: int, total: int) -> float:
    return value / total if total else 0.0


def _row(label: str, node: ParamNode, total: int, width: int) -> str:
    return f"{label:<{width}}\t{node.numel:15,d}\t{_ratio(node.numel, total):>10.2%}\t{node.mb:>8.2f}\n"


def _format(node: ParamNode, level: int, total: int, width: int, max_level: int | None) -> list[str]:
    label = _FIRST_INDENT if level == 0 else _INDENT_STEP * level + _FIRST_INDENT
    label += node.name
    if max_level is not None and level == max_level:
        return [_row(label + ":", node, total, width)]
    lines = [f"{label:<{width}}\n" if len(node.children) == 1 else _row(label + ":", node, total, width)]
    for child in node.children.values():
        lines.extend(_format(child, level + 1, total, width, max_level))
    return lines


def _check_max_level(max_level: int | None) -> None:
    if max_level is not None and (isinstance(max_level, bool) or not isinstance(max_level, int) or max_level < 0):
        raise TypeError(f"display_parameters: max_level must be a non-negative int or None, got {max_level!r}")


def format_parameter_tree(root: ParamNode, max_level: int | None = None) -> str:
    _check_max_level(max_level)
    width = _name_width(root, 0, max_level) + 1
    header = f"{'LAYER NAME':<{width}}\t{'#PARAMS':>15}\t{'RATIO':>10}\t{'MEM(MB)':>8}\n"
    return "\n" + header + "".join(_format(root, 0, root.numel, width, max_level))


def display_parameters(model_or_state_dict: Any, max_level: int | None = None) -> str:
    """TextBrewer's parameter table for a module or a state dict, as a string (nothing is printed).

    Raises TypeError for anything that is neither a ``torch.nn.Module`` nor a mapping of name -> tensor.
    """
    _check_max_level(max_level)
    return format_parameter_tree(build_parameter_tree(model_or_state_dict), max_level)


def parameter_tree(model_or_state_dict: Any) -> dict[str, Any]:
    """The same tree as JSON-able nested dicts.

    Each node: name, fullname, params, ratio (0..1 of the root), mem_mb, shared, children.
    """
    return build_parameter_tree(model_or_state_dict).to_dict()
