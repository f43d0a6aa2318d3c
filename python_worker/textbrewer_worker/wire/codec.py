"""Tensor frames <-> torch tensors, and the placeholders inside JSON args/results: `{"$t": i}` for tensor i and
`{"$f": "NaN" | "Infinity" | "-Infinity"}` for the non-finite floats that strict JSON cannot hold."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in TORCH_DTYPES.items()}


class ProtocolError(ValueError):
    """A message that does not follow the protocol; answered with an error reply."""


NON_FINITE: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_RESERVED_KEYS = ("$t", "$f")


def encode_float(x: float) -> Any:
    """x itself when finite, else its `{"$f": …}` placeholder."""
    if math.isfinite(x):
        return x
    return {"$f": "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")}


def decode_tensor(meta: dict[str, Any], frame: Any) -> torch.Tensor:
    """Wraps a received frame as a tensor without copying (the frame must outlive the tensor)."""
    dtype = TORCH_DTYPES[meta["dtype"]]
    shape = [int(s) for s in meta["shape"]]
    buf = frame.buffer if hasattr(frame, "buffer") else frame
    nbytes = len(buf) if not isinstance(buf, memoryview) else buf.nbytes
    expected = int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
    if nbytes != expected or meta["byteLength"] != expected:
        raise ProtocolError(
            f"tensor frame of {nbytes} bytes does not match dtype {meta['dtype']} and shape {shape} "
            f"({expected} bytes expected)"
        )
    if expected == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(buf, dtype=dtype).reshape(shape)


def decode_value(value: Any, tensors: list[torch.Tensor]) -> Any:
    """Replaces every `{"$t": i}` in a decoded JSON value by tensors[i]."""
    if isinstance(value, dict):
        if len(value) == 1 and "$t" in value:
            index = value["$t"]
            if not isinstance(index, int) or not 0 <= index < len(tensors):
                raise ProtocolError(f"tensor reference {value!r} is out of range (message has {len(tensors)})")
            return tensors[index]
        if len(value) == 1 and "$f" in value:
            name = value["$f"]
            if not isinstance(name, str) or name not in NON_FINITE:
                raise ProtocolError(f"non-finite placeholder {value!r}: expected one of {', '.join(NON_FINITE)}")
            return NON_FINITE[name]
        return {k: decode_value(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v, tensors) for v in value]
    return value


def tensor_bytes(t: torch.Tensor) -> tuple[dict[str, Any], memoryview]:
    """A C-contiguous CPU copy of t as (meta, bytes). Non-contiguous and device tensors are materialised once."""
    if t.dtype not in DTYPE_NAMES:
        raise TypeError(f"dtype {t.dtype} cannot be sent; supported: {', '.join(TORCH_DTYPES)}")
    cpu = t.detach()
    if cpu.device.type != "cpu":
        cpu = cpu.cpu()
    cpu = cpu.contiguous()
    # numpy has no bfloat16: reinterpret the bits.
    view = cpu.view(torch.int16) if cpu.dtype == torch.bfloat16 else cpu
    array = view.numpy()
    meta = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(cpu.shape), "byteLength": int(array.nbytes)}
    # numpy's stubs declare ndarray.__buffer__ only for Python >= 3.12; every ndarray has the buffer protocol
    return meta, memoryview(array.reshape(-1)).cast("B") if array.size else memoryview(b"")  # pyright: ignore[reportArgumentType]


def encode_value(value: Any, metas: list[dict[str, Any]], frames: list[Any]) -> Any:
    """Replaces tensors inside value by `{"$t": i}`, appending their bytes to frames, and non-finite floats by
    `{"$f": …}`."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, torch.Tensor):
        meta, data = tensor_bytes(value)
        metas.append(meta)
        frames.append(data)
        return {"$t": len(metas) - 1}
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in _RESERVED_KEYS:
            raise ProtocolError(
                f"a result holds {{{next(iter(value))!r}: …}} alone; that key is reserved for the wire's placeholders"
            )
        return {str(k): encode_value(v, metas, frames) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v, metas, frames) for v in value]
    if isinstance(value, np.generic):
        item = value.item()
        return encode_float(item) if isinstance(item, float) else item
    return value
