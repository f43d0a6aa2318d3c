"""Token-level KD for causal language models: the next-token shift, the valid positions and the per-token average.

Logits at position i predict token i + 1, so position i counts when token i + 1 is a target: labels[:, i + 1] !=
-100 and, with an attention mask, attention_mask[:, i + 1] != 0. The last position never counts. This is the only
place the shift happens; the loss compares teacher and student at the same positions.

The loss is Σ over the valid positions of τ²·D(position) divided by the number of valid positions of the whole
optimizer step (all micro-batches, and ranks), not by each micro-batch's own count, so every token weighs the same
however sequences are batched (TRL's num_items_in_batch). The training step divides every term by the number of
micro-batches it accumulates (gradientAccumulationSteps), so `causal_lm_kd_loss` takes the step's token count and
that number and divides by their ratio: summed over the micro-batches of a step, the gradients are those of
Σ_step / N_step. Each micro-batch's logged value is then its sum over N_step / gas, and their mean (what a metrics
line reports) is the step's per-token loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .llm_losses import DEFAULT_ALPHA, DEFAULT_BETA, TokenLossKind, token_kd_loss
from .losses import ReductionError, Temperature

IGNORE_INDEX = -100

__all__ = ["IGNORE_INDEX", "causal_lm_kd_loss", "causal_lm_valid_positions", "count_valid_tokens"]


def causal_lm_valid_positions(labels: Tensor | None, attention_mask: Tensor | None, shape: tuple[int, int]) -> Tensor:
    """(B, L) bool: position i counts when token i + 1 is a target (labels != -100, attention_mask != 0)."""
    batch, length = shape
    for name, x in (("labels", labels), ("attention_mask", attention_mask)):
        if x is not None and tuple(x.shape) != (batch, length):
            raise ReductionError(f"causal-lm KD: {name} shape {tuple(x.shape)} != logits positions {(batch, length)}")
    ref = labels if labels is not None else attention_mask
    if ref is None:
        raise ReductionError("causal-lm KD: give labels (-100 = no target) or an attention_mask to mark the targets")
    target = (labels != IGNORE_INDEX) if labels is not None else (attention_mask != 0)  # type: ignore[operator]
    if labels is not None and attention_mask is not None:
        target = target & (attention_mask != 0)
    valid = torch.zeros((batch, length), dtype=torch.bool, device=target.device)
    valid[:, :-1] = target[:, 1:]
    return valid


def count_valid_tokens(labels: Tensor | None, attention_mask: Tensor | None) -> int:
    """The positions one micro-batch contributes to the per-token average (sum these over the optimizer step)."""
    ref = labels if labels is not None else attention_mask
    if ref is None:
        raise ReductionError("causal-lm KD: give labels (-100 = no target) or an attention_mask to mark the targets")
    return int(causal_lm_valid_positions(labels, attention_mask, (ref.shape[0], ref.shape[1])).sum())


def causal_lm_kd_loss(
    kind: TokenLossKind,
    logits_S: Tensor,
    logits_T: Tensor,
    temperature: Temperature = 1.0,
    *,
    labels: Tensor | None = None,
    attention_mask: Tensor | None = None,
    step_tokens: int | None = None,
    accumulation_steps: int = 1,
    beta: float = DEFAULT_BETA,
    alpha: float = DEFAULT_ALPHA,
    chunk_size: int | None = None,
) -> Tensor:
    """Σ_{valid positions} τ²·D / (step_tokens / accumulation_steps) for (B, L, V) logits of both models.

    step_tokens: the valid positions of every micro-batch of the optimizer step (count_valid_tokens summed); None:
    this micro-batch's own count (one micro-batch per step). Divided by accumulation_steps afterwards, as the
    training step does, the micro-batches' gradients add up to those of the step's per-token mean.
    """
    if logits_S.dim() != 3:
        raise ReductionError(f"causal-lm KD: expected (batch, length, vocab) logits, got {tuple(logits_S.shape)}")
    valid = causal_lm_valid_positions(labels, attention_mask, (logits_S.shape[0], logits_S.shape[1]))
    if step_tokens is not None and step_tokens < int(valid.sum()):
        raise ValueError(
            f"causal-lm KD: step_tokens {step_tokens} is below this micro-batch's {int(valid.sum())} valid tokens; "
            "count the valid tokens of every micro-batch of the optimizer step"
        )
    if accumulation_steps < 1:
        raise ValueError(f"causal-lm KD: accumulation_steps must be ≥ 1, got {accumulation_steps}")
    tokens = step_tokens if step_tokens is not None else max(int(valid.sum()), 1) * accumulation_steps
    return token_kd_loss(
        kind,
        logits_S,
        logits_T,
        temperature,
        mask=valid,
        num_tokens=max(tokens, 1) / accumulation_steps,
        beta=beta,
        alpha=alpha,
        chunk_size=chunk_size,
    )
