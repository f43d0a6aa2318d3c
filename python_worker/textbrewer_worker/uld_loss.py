"""Universal Logit Distillation (Boizard et al., 2024): a KD loss that works across tokenizers, chunked over positions.

Per position, with P_S = softmax(logits_S/τ) over the student's V_S tokens and P_T = softmax(logits_T/τ) over the
teacher's V_T: sort each distribution in decreasing order, pad the shorter one with zeros to max(V_S, V_T), and
take the L1 distance of the sorted vectors,

  ULD(row) = Σ_i |sort↓(P_S)_i − sort↓(P_T)_i|

which is the paper's closed form of the Wasserstein-1 distance between the two distributions under its uniform
transport cost; it compares the shapes of the distributions, never token ids, so V_S and V_T may differ. Each row
is multiplied by τ² like every token loss (the paper's code applies none, so at τ = 1 the values are theirs) and
the rows are averaged over the valid positions (per token, as the token losses; ULD's code averages per sequence
and then over the batch). Which student position is compared with which teacher position is the KD term's job
(terms/kd.py, cross_tokenizer_rows): by continuation position, truncated to the shorter.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .llm_losses import ChunkedRows, _up, chunk_rows_for, reduce_rows, row_temperatures, selected_rows
from .losses import LossInfo, ReductionError, Temperature, loss

__all__ = ["CROSS_TOKENIZER_LOSSES", "ULD_LOSSES", "uld_loss", "uld_rows"]


def uld_rows(s: Tensor, t: Tensor) -> Tensor:
    """Σ_i |sort↓(softmax(s))_i − sort↓(softmax(t))_i| per row, the shorter sorted vector padded with zeros."""
    p_s = F.softmax(s, dim=-1).sort(dim=-1, descending=True).values
    p_t = F.softmax(t, dim=-1).sort(dim=-1, descending=True).values
    width = max(p_s.shape[-1], p_t.shape[-1])
    p_s = F.pad(p_s, (0, width - p_s.shape[-1]))
    p_t = F.pad(p_t, (0, width - p_t.shape[-1]))
    return (p_s - p_t).abs().sum(-1)


@loss("uld", kind="kd")
def uld_loss(
    logits_S: Tensor,
    logits_T: Tensor,
    temperature: Temperature = 1.0,
    *,
    mask: Tensor | None = None,
    num_tokens: float | Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """Σ_{rows with mask ≠ 0} τ²·ULD(row) / (num_tokens or the number of those rows), chunked over rows.

    logits_S (..., V_S) and logits_T (..., V_T): the same positions (leading dimensions), any vocabularies.
    """
    name = "uld"
    if logits_S.shape[:-1] != logits_T.shape[:-1]:
        raise ReductionError(
            f"{name}: student positions {tuple(logits_S.shape[:-1])} != teacher positions "
            f"{tuple(logits_T.shape[:-1])}; align them first (split batches: the KD term pairs them by continuation "
            "position, truncated to the shorter)"
        )
    rows = selected_rows(name, logits_S, mask)
    tau, scalar_tau = row_temperatures(name, temperature, logits_S, rows)
    chunk = chunk_rows_for(name, chunk_size, max(logits_S.shape[-1], logits_T.shape[-1]))

    def row_fn(tau_c: float | Tensor, s: Tensor, t: Tensor) -> Tensor:
        return uld_rows(_up(s) / tau_c, _up(t) / tau_c)

    flat_S = logits_S.reshape(-1, logits_S.shape[-1])
    flat_T = logits_T.reshape(-1, logits_T.shape[-1])
    per_row: Tensor = ChunkedRows.apply(row_fn, rows, tau, scalar_tau, chunk, flat_S, flat_T)  # type: ignore[assignment]
    return reduce_rows(name, per_row, tau, scalar_tau, num_tokens)


# KD losses that compare distributions over different vocabularies (no token ids): the KD term lets their student
# and teacher logits differ in vocabulary and, with split batches, in positions
CROSS_TOKENIZER_LOSSES: frozenset[str] = frozenset({"uld"})

ULD_LOSSES: tuple[LossInfo, ...] = tuple(uld_loss.loss_info)  # type: ignore[attr-defined]
