"""Checks a batch's masks before a forward: a mask that does not match ``input_ids`` or holds NaN/Inf would otherwise
train silently (a [4, 6] attention_mask for [4, 8] input_ids broadcasts or is cut; NaN propagates into the loss).

MASK_KEYS are checked, in a record batch (and in each half of a ``{teacher, student}`` batch):
- shape: the same as ``input_ids`` (a mask with more dimensions, e.g. a [batch, 1, length, length] attention mask,
  must agree on the batch and the last dimension);
- values: finite, for floating-point masks.
Runs on the CPU tensors as they arrive, before they move to the device, so a step pays no device sync (its cost per
batch: bench/README.md).
"""

from __future__ import annotations

import math
from typing import Any

import torch

MASK_KEYS = ("attention_mask", "token_type_ids", "special_tokens_mask", "logits_mask", "inputs_mask")
REFERENCE_KEY = "input_ids"


class BatchError(ValueError):
    """A batch's masks do not fit its input_ids, or hold non-finite values."""


def describe(batch: dict[str, Any]) -> str:
    """Every tensor of a record batch: name, shape and dtype."""
    parts = []
    for name, value in batch.items():
        if isinstance(value, torch.Tensor):
            parts.append(f"{name} {list(value.shape)} {str(value.dtype).replace('torch.', '')}")
        elif isinstance(value, dict):
            parts.append(f"{name} {{{describe(value)}}}")
        else:
            parts.append(f"{name} ({type(value).__name__})")
    return ", ".join(parts)


def _problem(name: str, mask: torch.Tensor, ids: torch.Tensor | None) -> str | None:
    if ids is not None:
        if mask.dim() == ids.dim():
            fits = tuple(mask.shape) == tuple(ids.shape)
        else:
            fits = mask.dim() > ids.dim() and mask.shape[0] == ids.shape[0] and mask.shape[-1] == ids.shape[-1]
        if not fits:
            return f"{name} has shape {list(mask.shape)} but {REFERENCE_KEY} has {list(ids.shape)}; masks must match it"
    # a sum is NaN or Inf when an element is (or when a float16 sum overflows: confirmed element-wise); one
    # reduction costs a sixth of isfinite().all() on a [32, 128] mask
    if mask.is_floating_point() and not math.isfinite(float(mask.sum())):
        bad = int((~torch.isfinite(mask)).sum())
        if bad:
            return f"{name} holds {bad} non-finite value(s) (NaN or Inf); masks must be finite (0/1)"
    return None


def _check_record(batch: dict[str, Any], where: str, whole: dict[str, Any]) -> None:
    ids = batch.get(REFERENCE_KEY)
    ids = ids if isinstance(ids, torch.Tensor) else None
    for name in MASK_KEYS:
        mask = batch.get(name)
        if isinstance(mask, torch.Tensor):
            problem = _problem(name, mask, ids)
            if problem is not None:
                raise BatchError(f"{where}.{problem}. The batch: {describe(whole)}")


def check_batch(batch: Any, where: str = "batch") -> None:
    """Raises BatchError naming the mask, the rule and every tensor of the batch. Positional batches (no names)
    and single tensors pass unchecked."""
    if not isinstance(batch, dict):
        return
    if set(batch) == {"teacher", "student"}:
        for side in ("teacher", "student"):
            if isinstance(batch[side], dict):
                _check_record(batch[side], f"{where}.{side}", batch)
        return
    _check_record(batch, where, batch)
