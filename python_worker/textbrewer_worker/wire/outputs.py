"""Model outputs as wire values: ModelOutput → record, tuples → arrays, None dropped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def outputs_to_wire(outputs: Any) -> Any:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping):  # HF ModelOutput is an OrderedDict of its non-None fields
        return {str(k): outputs_to_wire(v) for k, v in outputs.items() if v is not None}
    if isinstance(outputs, (list, tuple)):
        return [outputs_to_wire(v) for v in outputs]
    if isinstance(outputs, (int, float, str, bool)) or outputs is None:
        return outputs
    raise TypeError(f"model output of type {type(outputs).__name__} cannot be returned; return tensors")
