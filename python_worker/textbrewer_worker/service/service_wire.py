"""The messages between a teacher service and the student workers that read it: a JSON header frame, then one frame
per tensor (the codec's placeholders), and the selection of the teacher outputs a student's plan reads."""

from __future__ import annotations

import json
from typing import Any

import torch

from ..wire.codec import decode_tensor, decode_value, encode_value

LAYERS_KEY = "$layers"
# the first teacher's reply holds the KD targets as top-k log-probabilities under this key, when the client asks
TOPK_KEY = "$topk"
FLOAT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TeacherServiceError(RuntimeError):
    """The teacher service cannot be reached, refused this client, or failed a request; names the endpoint."""


def pack(header: dict[str, Any], value: Any = None) -> list[Any]:
    metas: list[dict[str, Any]] = []
    frames: list[Any] = []
    body = encode_value(value, metas, frames)
    head = {**header, "body": body, "tensors": metas}
    return [json.dumps(head, separators=(",", ":"), allow_nan=False).encode("utf-8"), *frames]


def unpack(frames: list[Any]) -> tuple[dict[str, Any], Any]:
    """(header, body with its tensors). The tensors share the frames' memory."""
    first = frames[0]
    header = json.loads(bytes(first.buffer if hasattr(first, "buffer") else first))
    metas = header.get("tensors", [])
    if len(metas) != len(frames) - 1:
        raise ValueError(f"message describes {len(metas)} tensors but {len(frames) - 1} frames came")
    tensors = [decode_tensor(meta, frame) for meta, frame in zip(metas, frames[1:])]
    return header, decode_value(header.get("body"), tensors)


def wanted_outputs(terms: list[dict[str, Any]], topk: bool = False) -> dict[str, Any] | None:
    """What a plan's terms read of the teachers' adaptor outputs: {key: "all" | [layer, ...]}, or None (all of it)
    when a term of the plan is not known to read only logits and the matched layers. With `topk` the KD targets come
    as top-k log-probabilities (TOPK_KEY), and the dense logits stay in the service."""
    wanted: dict[str, Any] = {}
    for spec in terms:
        kind = spec["kind"]
        if kind in ("hard_label", "supervised"):
            continue
        if kind in ("kd", "causal_lm_kd"):
            if not topk:
                wanted["logits"] = wanted["logits_mask"] = "all"
        elif kind == "match":
            layers = spec["layerT"] if isinstance(spec["layerT"], list) else [spec["layerT"]]
            current = wanted.setdefault(spec["feature"], [])
            if current != "all":
                current.extend(i for i in layers if i not in current)
        else:
            return None
    return wanted


def select_outputs(results: dict[str, Any], wanted: dict[str, Any] | None, dtype: torch.dtype) -> dict[str, Any]:
    """The adaptor outputs a student reads, floats cast to `dtype`; a list of layers keeps only the matched ones as
    {"$layers": n, "at": [[i, tensor], ...]} (i non-negative)."""
    out: dict[str, Any] = {}
    for key, value in results.items():
        if wanted is not None and key not in wanted:
            continue
        layers = None if wanted is None else wanted[key]
        if isinstance(layers, list) and isinstance(value, (list, tuple)):
            n = len(value)
            picked = sorted({i % n for i in layers if -n <= i < n})
            out[key] = {LAYERS_KEY: n, "at": [[i, cast(value[i], dtype)] for i in picked]}
        else:
            out[key] = cast(value, dtype)
    return out


def restore_outputs(results: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """A selection as the terms read it: tensors on `device`, floats as float32, layer lists at full length (None
    where a layer was not sent)."""
    out: dict[str, Any] = {}
    for key, value in results.items():
        if isinstance(value, dict) and LAYERS_KEY in value:
            layers: list[Any] = [None] * int(value[LAYERS_KEY])
            for i, t in value["at"]:
                layers[int(i)] = cast(t, torch.float32).to(device)
            out[key] = layers
        else:
            out[key] = _to(value, device)
    return out


def cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, (list, tuple)):
        return [cast(v, dtype) for v in value]
    if isinstance(value, dict):
        return {k: cast(v, dtype) for k, v in value.items()}
    return value


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        # the frame's memory is read-only and shared: the clone gives the terms a tensor of their own
        return cast(value, torch.float32).to(device).clone() if value.is_floating_point() else value.to(device).clone()
    if isinstance(value, (list, tuple)):
        return [_to(v, device) for v in value]
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value
