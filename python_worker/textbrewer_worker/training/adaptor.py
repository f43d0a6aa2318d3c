"""Applies an adaptor spec (built in TypeScript, see src/adaptor/spec.ts) to a batch and a model's outputs.

A ``select`` spec maps adaptor keys to selectors::

    {"kind": "select",
     "keys": {"logits": {"from": "out", "path": ["logits"]},
              "hidden": {"from": "out", "path": ["hidden_states", {"slice": [1, None, None]}]},
              "inputs_mask": {"from": "batch", "path": ["attention_mask"]}}}

A string step reads a mapping key or an attribute, an int step indexes (a ModelOutput by position, as
``out[i]`` does in Hugging Face), a slice step slices a sequence. ``{"list": [...]}`` builds a list.
A ``python`` spec ``{"kind": "python", "ref": "file.py:fn"}`` calls ``fn(batch, outputs)`` from that file.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..pyref import resolve_ref

__all__ = [
    "ADAPTOR_KEYS",
    "AdaptorKeyError",
    "AdaptorSpecError",
    "apply_adaptor",
    "describe_selector",
    "load_python_adaptor",
    "needs_outputs",
]

ADAPTOR_KEYS: tuple[str, ...] = (
    "logits",
    "logits_mask",
    "labels",
    "losses",
    "hidden",
    "attention",
    "inputs_mask",
)

# Output families and the HF forward flag that turns each on; seq2seq models prefix them (encoder_, decoder_).
_OUTPUT_FLAGS = {"hidden_states": "output_hidden_states", "attentions": "output_attentions"}

_PY_REF = re.compile(r"^(?P<file>.+\.py):(?P<fn>[A-Za-z_][A-Za-z0-9_]*)$")
_IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*$")

PythonAdaptor = Callable[[Any, Any], Mapping[str, Any]]


class AdaptorKeyError(ValueError):
    """An adaptor could not produce a key: a missing path, a None output, or an unknown key."""


class AdaptorSpecError(ValueError):
    """The spec itself is malformed (the TypeScript side validates it; this guards the wire)."""


def apply_adaptor(spec: Mapping[str, Any], batch: Any, outputs: Any) -> dict[str, Any]:
    """The adaptor's dict for this batch and these model outputs."""
    kind = _kind(spec)
    if kind == "python":
        fn = load_python_adaptor(spec["ref"])
        result = fn(batch, outputs)
        if not isinstance(result, Mapping):
            raise AdaptorKeyError(
                f"Python adaptor {spec['ref']} returned {type(result).__name__}; it must return a dict of "
                f"adaptor keys ({', '.join(ADAPTOR_KEYS)})"
            )
        _check_keys(result.keys(), f"Python adaptor {spec['ref']}")
        return {k: v for k, v in result.items() if v is not None}

    roots = {"out": outputs, "batch": batch}
    keys = _keys(spec)
    return {key: _resolve_selector(selector, roots, key) for key, selector in keys.items()}


def needs_outputs(spec: Mapping[str, Any]) -> set[str]:
    """Which of {"hidden_states", "attentions"} the spec reads, so the model is called with those flags.

    A Python adaptor, or an int/slice step on the outputs themselves (a tuple position depends on which
    outputs are present), may read either, so both are returned then.
    """
    if _kind(spec) == "python":
        return set(_OUTPUT_FLAGS)
    needed: set[str] = set()
    for selector in _keys(spec).values():
        for path in _out_paths(selector):
            if path and not isinstance(path[0], str):
                return set(_OUTPUT_FLAGS)
            for step in path:
                if isinstance(step, str):
                    needed.update(family for family in _OUTPUT_FLAGS if step.endswith(family))
    return needed


def load_python_adaptor(ref: str) -> PythonAdaptor:
    """The function named by ``file.py:fn``; each file is imported once (relative paths: the worker's cwd)."""
    if not isinstance(ref, str) or _PY_REF.match(ref) is None:
        raise AdaptorSpecError(f'a Python adaptor reference must look like "my_adaptors.py:adaptor"; got {ref!r}')
    return resolve_ref(ref, "python adaptor", AdaptorSpecError)


def describe_selector(selector: Mapping[str, Any]) -> str:
    """The selector as it reads in TypeScript, e.g. ``out.hidden_states.slice(1)``."""
    if "list" in selector:
        return "[" + ", ".join(describe_selector(s) for s in selector["list"]) + "]"
    return str(selector.get("from")) + "".join(_describe_step(s) for s in selector.get("path", ()))


# ----------------------------------------------------------------------------------------------------
# Spec validation


def _kind(spec: Any) -> str:
    if not isinstance(spec, Mapping) or spec.get("kind") not in ("select", "python"):
        raise AdaptorSpecError(f"an adaptor spec is {{'kind': 'select' | 'python', ...}}; got {spec!r:.200}")
    if spec["kind"] == "python" and not isinstance(spec.get("ref"), str):
        raise AdaptorSpecError("a python adaptor spec needs 'ref': 'file.py:fn'")
    return spec["kind"]


def _keys(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    keys = spec.get("keys")
    if not isinstance(keys, Mapping):
        raise AdaptorSpecError("a select adaptor spec needs 'keys': {adaptor key: selector}")
    _check_keys(keys.keys(), "adaptor spec", error=AdaptorSpecError)
    for key, selector in keys.items():
        _check_selector(selector, key)
    return keys


def _check_keys(keys: Any, where: str, error: type[ValueError] = AdaptorKeyError) -> None:
    unknown = [k for k in keys if k not in ADAPTOR_KEYS]
    if not unknown:
        return
    parts = []
    for k in unknown:
        guess = difflib.get_close_matches(str(k), ADAPTOR_KEYS, n=1)
        parts.append(f"{k!r}" + (f" (did you mean {guess[0]}?)" if guess else ""))
    raise error(f"{where} returned unknown key {', '.join(parts)}; allowed keys: {', '.join(ADAPTOR_KEYS)}")


def _check_selector(selector: Any, key: str) -> None:
    if isinstance(selector, Mapping) and set(selector) == {"list"} and isinstance(selector["list"], list):
        for inner in selector["list"]:
            _check_selector(inner, key)
        return
    if (
        isinstance(selector, Mapping)
        and set(selector) == {"from", "path"}
        and selector["from"] in ("out", "batch")
        and isinstance(selector["path"], list)
    ):
        for step in selector["path"]:
            if not _valid_step(step):
                raise AdaptorSpecError(f"adaptor key {key!r}: invalid path step {step!r}")
        return
    raise AdaptorSpecError(f"adaptor key {key!r}: invalid selector {selector!r:.200}")


def _valid_step(step: Any) -> bool:
    if isinstance(step, bool):
        return False
    if isinstance(step, (str, int)):
        return True
    if isinstance(step, Mapping) and set(step) == {"slice"}:
        bounds = step["slice"]
        return (
            isinstance(bounds, (list, tuple))
            and len(bounds) == 3
            and all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in bounds)
            and bounds[2] != 0
        )
    return False


def _out_paths(selector: Mapping[str, Any]) -> list[list[Any]]:
    if "list" in selector:
        return [p for inner in selector["list"] for p in _out_paths(inner)]
    return [selector["path"]] if selector["from"] == "out" else []


# ----------------------------------------------------------------------------------------------------
# Resolution


@dataclasses.dataclass(frozen=True)
class _Where:
    """The adaptor key being resolved and the path up to (parent) and including (written) the current step."""

    key: str
    parent: str
    written: str

    def error(self, message: str) -> AdaptorKeyError:
        return AdaptorKeyError(f"adaptor key {self.key!r}: {message}")


def _resolve_selector(selector: Mapping[str, Any], roots: Mapping[str, Any], key: str) -> Any:
    if "list" in selector:
        return [_resolve_selector(inner, roots, key) for inner in selector["list"]]
    value = roots[selector["from"]]
    path = selector["path"]
    written = selector["from"]
    for step in path:
        where = _Where(key, written, written + _describe_step(step))
        value = _step(value, step, where)
        written = where.written
    final = _Where(key, written, written)
    if value is None:
        raise final.error(f"{written} is None{_flag_hint(written)}")
    if inspect.isroutine(value):
        raise final.error(f"{written} is a method, not a value; adaptors select outputs")
    return value


def _step(value: Any, step: Any, where: _Where) -> Any:
    if value is None:
        hint = _flag_hint(where.parent)
        raise where.error(f"{where.parent} is None, so {where.written} cannot be read{hint}")
    if isinstance(step, str):
        return _read_name(value, step, where)
    if isinstance(step, int):
        return _index(value, step, where)
    return _as_sequence(value, where)[slice(*step["slice"])]


def _read_name(value: Any, name: str, where: _Where) -> Any:
    if isinstance(value, Mapping):
        if name in value:
            return value[name]
        # A ModelOutput leaves None fields out of its mapping but still has them as attributes.
        if _is_model_output(value) and name in _field_names(value):
            raise where.error(f"{where.written} is None{_flag_hint(name)}")
        raise where.error(f"{where.parent} has no {name!r}; available: {_available(value)}")
    if isinstance(value, (list, tuple)):
        raise where.error(
            f"{where.parent} is a {type(value).__name__} of length {len(value)}, so {where.written} cannot "
            "be read; select by index (out[1], .at(-1)) or .slice()"
        )
    missing = where.error(f"{where.parent} has no attribute {name!r}; available: {_available(value)}")
    if name.startswith("__"):
        raise missing
    try:
        return getattr(value, name)
    except AttributeError:
        raise missing from None
    except Exception as e:  # noqa: BLE001  (a property that raised, e.g. Tensor.imag on a real tensor)
        raise where.error(f"reading {where.written} failed: {e}") from None


def _index(value: Any, index: int, where: _Where) -> Any:
    if _is_model_output(value):
        value = value.to_tuple()
    elif isinstance(value, Mapping):
        if index in value:
            return value[index]
        raise where.error(
            f"{where.parent} is a mapping without key {index}; select by name, available: {_available(value)}"
        )
    try:
        return value[index]
    except IndexError:
        length = len(value) if hasattr(value, "__len__") else "unknown"
        hint = _tuple_hint(where.parent)
        message = f"{where.written} is out of range ({where.parent} has length {length}){hint}"
        raise where.error(message) from None
    except (TypeError, KeyError) as e:
        raise where.error(f"{where.parent} ({type(value).__name__}) cannot be indexed: {e}") from None


def _as_sequence(value: Any, where: _Where) -> Sequence[Any]:
    if _is_model_output(value):
        return value.to_tuple()
    if not isinstance(value, Mapping) and hasattr(value, "__getitem__"):
        return value
    raise where.error(f"{where.parent} ({type(value).__name__}) cannot be sliced for {where.written}")


def _is_model_output(value: Any) -> bool:
    return isinstance(value, Mapping) and callable(getattr(value, "to_tuple", None))


def _field_names(value: Any) -> list[str]:
    if dataclasses.is_dataclass(value):
        return [f.name for f in dataclasses.fields(value)]
    return []


def _available(value: Any) -> str:
    if _is_model_output(value):
        fields = _field_names(value) or list(value.keys())
        return ", ".join(f if value.get(f) is not None else f"{f} (None)" for f in fields)
    if isinstance(value, Mapping):
        return ", ".join(str(k) for k in value) or "no keys"
    if isinstance(value, torch.Tensor):
        return f"nothing to select inside a tensor of shape {tuple(value.shape)}"
    # Only instance attributes: reading every attribute of an arbitrary object could run properties.
    names = [n for n in getattr(value, "__dict__", {}) if not n.startswith("_")]
    shown = ", ".join(names[:25]) + (f", ... ({len(names)} in all)" if len(names) > 25 else "")
    return f"attributes of {type(value).__name__}: {shown or 'none'}"


def _flag_hint(written: str) -> str:
    """A hint when a None comes from an output family that the model only returns on request."""
    for family, flag in _OUTPUT_FLAGS.items():
        if re.search(rf"{family}\b", written):
            return (
                f" (the model returns {family} only when called with {flag}=True; the worker passes it "
                "when an adaptor reads them, so check that the model supports it)"
            )
    return ""


def _tuple_hint(parent: str) -> str:
    if parent == "out":
        return "; tuple positions of model outputs shift with the outputs present, prefer names (out.logits)"
    return ""


def _describe_step(step: Any) -> str:
    if isinstance(step, bool):
        return f"[{step!r}]"
    if isinstance(step, int):
        return f".at({step})" if step < 0 else f"[{step}]"
    if isinstance(step, str):
        return f".{step}" if _IDENTIFIER.match(step) else f"[{step!r}]"
    start, stop, stride = step["slice"]
    bounds = (start, stop) if stride is None else (start, stop, stride)
    args = ["undefined" if b is None else str(b) for b in bounds]
    while args and args[-1] == "undefined":
        args.pop()
    return f".slice({', '.join(args)})"
