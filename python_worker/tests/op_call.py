"""Calls an op the way the server does: the args in their wire form checked against the op's schema (defaults filled
in), then decoded, then the handler."""

from __future__ import annotations

from typing import Any

from textbrewer_worker.wire import protocol
from textbrewer_worker.wire.codec import decode_tensor, decode_value, encode_value
from textbrewer_worker.wire.ops import OPS, WorkerState


def call_op(state: WorkerState, name: str, args: dict[str, Any]) -> Any:
    metas: list[dict[str, Any]] = []
    frames: list[Any] = []
    wire = encode_value(args, metas, frames)
    tensors = [decode_tensor(meta, frame) for meta, frame in zip(metas, frames)]
    return OPS[name](state, decode_value(protocol.validate_args(name, wire), tensors))
