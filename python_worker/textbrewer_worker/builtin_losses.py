"""Every built-in loss: the classic ones (losses.py), the token-level LLM ones (llm_losses.py) and ULD (uld_loss.py)."""

from __future__ import annotations

from . import sparse_llm_losses as _sparse_llm_losses  # noqa: F401  (the token losses' top-k forms)
from .llm_losses import LLM_LOSSES
from .losses import BUILTIN_LOSSES as CLASSIC_LOSSES
from .losses import LossInfo
from .uld_loss import ULD_LOSSES

# what losses.json publishes, and the names a user loss may not take
BUILTIN_LOSSES: tuple[LossInfo, ...] = CLASSIC_LOSSES + LLM_LOSSES + ULD_LOSSES
