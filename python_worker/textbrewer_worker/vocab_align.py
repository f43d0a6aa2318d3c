"""Teacher and student vocabularies before a logits-KD run, and the positions a cross-tokenizer loss compares.

At train_configure the sizes of the two models' output embeddings (the logits' last dimension) and, when the run
names them, the two tokenizers are compared:

- same tokenizer (or sizes alone that differ only by padding): the logits are cut to the shared prefix, said once;
  padding means the larger size is a multiple of 64 and exceeds the smaller by less than 256 (GPT-2's 50257 padded
  to 50304, Qwen's 151936 and 152064), or, with the tokenizers named, that both map the same tokens to the same ids
  and fit in the smaller size;
- different tokenizers: VocabularyMismatchError naming the sizes, the first ids whose tokens differ and the fix
  (the ULD loss, with split batches built from the same texts), unless the KD loss is a cross-tokenizer one.

With a cross-tokenizer loss (ULD) the student and teacher positions are paired per sequence (cross_tokenizer_rows):
the positions each side marks, in order, the k-th student one with the k-th teacher one, truncated to the shorter
(ULD's convention: by answer / continuation position). A side marks the positions of its logits_mask, else, when its
adaptor returns (B, L) labels, those whose next token is a target (labels ≠ −100, sequence_kd's shift), else all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from .uld_loss import CROSS_TOKENIZER_LOSSES

__all__ = [
    "VocabularyMismatchError",
    "check_run_vocabularies",
    "compare_tokenizers",
    "cross_tokenizer_rows",
    "padding_only",
    "run_tokenizers",
    "vocab_size_of",
]

PAD_MULTIPLE = 64
PAD_LIMIT = 256
ULD_FIX = (
    "distil across tokenizers with kdLossType 'uld' (Universal Logit Distillation) and split batches "
    "{ teacher, student } built from the same texts by each model's tokenizer"
)


class VocabularyMismatchError(ValueError):
    """Teacher and student logits are over different vocabularies, and the KD loss compares token by token."""


def vocab_size_of(model: nn.Module) -> int | None:
    """Rows of the model's output embeddings (the logits' last dimension), or None without an LM head."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    weight = getattr(head, "weight", None)
    return int(weight.shape[0]) if isinstance(weight, Tensor) else None


def padding_only(a: int, b: int) -> bool:
    """Sizes that one tokenizer padded differently (the larger a multiple of 64, less than 256 above the other)."""
    small, large = sorted((a, b))
    return small < large and large % PAD_MULTIPLE == 0 and large - small < PAD_LIMIT


def _tokens_by_id(tokenizer: Any) -> dict[int, str]:
    return {i: t for t, i in tokenizer.get_vocab().items()}


def compare_tokenizers(teacher: Any, student: Any, show: int = 3) -> str | None:
    """None when both map the same tokens to the same ids; else what differs (sizes, first differing ids)."""
    by_id_T, by_id_S = _tokens_by_id(teacher), _tokens_by_id(student)
    if by_id_T == by_id_S:
        return None
    ids = sorted(set(by_id_T) | set(by_id_S))
    differ = [i for i in ids if by_id_T.get(i) != by_id_S.get(i)][:show]
    shown = "; ".join(f"id {i}: teacher {by_id_T.get(i)!r}, student {by_id_S.get(i)!r}" for i in differ)
    return f"the teacher's tokenizer has {len(by_id_T)} tokens and the student's {len(by_id_S)}; first differences: {shown}"


def run_tokenizers(extensions: dict[str, Any], names: dict[str, str] | None) -> tuple[Any, Any] | None:
    """(teacher, student) tokenizers the KD term names (worker tokenizer ids, loaded with load_tokenizer), or None."""
    if names is None:
        return None
    table = extensions.get("tokenizers", {})  # tokenizer_ops keeps the loaded tokenizers here
    for side in ("teacher", "student"):
        if names[side] not in table:
            raise KeyError(
                f"tokenizers.{side}: no tokenizer '{names[side]}' in this worker (disposed, or from another worker?)"
            )
    return table[names["teacher"]], table[names["student"]]


def _check_pair(
    loss_type: str, size_T: int | None, size_S: int | None, tokenizers: tuple[Any, Any] | None
) -> tuple[int | None, str | None]:
    """(the shared prefix to cut both logits to, or None; the line to log) for one teacher against the student."""
    if tokenizers is not None:
        differs = compare_tokenizers(*tokenizers)
        if differs is not None:
            raise VocabularyMismatchError(
                f"vocabularies: {differs}; kdLossType '{loss_type}' compares token ids: {ULD_FIX}"
            )
    if size_T is None or size_S is None or size_T == size_S:
        return None, None
    prefix = min(size_T, size_S)
    sizes = f"the teacher's logits have {size_T} entries and the student's {size_S}"
    if tokenizers is not None:
        count = len(tokenizers[0].get_vocab())
        if count > prefix:
            raise VocabularyMismatchError(
                f"vocabularies: {sizes}, but their tokenizer has {count} tokens: the smaller head cannot score them "
                f"all; resize it (model.resize_token_embeddings({count})) or {ULD_FIX}"
            )
        why = f"the tokenizers are the same ({count} tokens)"
    elif padding_only(size_T, size_S):
        why = "the sizes differ only by padding (name the tokenizers to check their tokens)"
    else:
        raise VocabularyMismatchError(
            f"vocabularies: {sizes}, more than padding apart (padding: the larger a multiple of {PAD_MULTIPLE}, "
            f"less than {PAD_LIMIT} above the other): different tokenizers? {ULD_FIX}; if both use one tokenizer, "
            "name it for each model (train option tokenizers: { teacher, student }) so its tokens are compared"
        )
    return prefix, f"vocabularies: {sizes}; {why}, so KD compares the shared first {prefix} entries"


def check_run_vocabularies(
    loss_type: str, student: nn.Module, teachers: Iterable[nn.Module], tokenizers: tuple[Any, Any] | None
) -> tuple[int | None, list[str]]:
    """(the prefix width KD cuts padded logits to, or None; lines for the log). Raises VocabularyMismatchError."""
    if loss_type in CROSS_TOKENIZER_LOSSES:
        return None, []
    size_S = vocab_size_of(student)
    prefix: int | None = None
    lines: list[str] = []
    for teacher in teachers:
        width, line = _check_pair(loss_type, vocab_size_of(teacher), size_S, tokenizers)
        if width is not None:
            prefix = width if prefix is None else min(prefix, width)
        if line is not None and line not in lines:
            lines.append(line)
    return prefix, lines


def _sequence_rows(logits: Tensor, mask: Tensor | None) -> list[Tensor]:
    """Per sequence of (B, L, V) logits: the positions that count (mask ≠ 0; all without a mask), in order."""
    if mask is None:
        return [torch.arange(logits.shape[1], device=logits.device)] * logits.shape[0]
    if tuple(mask.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"logits_mask shape {tuple(mask.shape)} != logits positions {tuple(logits.shape[:2])}")
    return [(m != 0).nonzero().squeeze(-1) for m in mask]


def cross_tokenizer_rows(
    logits_S: Tensor, logits_T: Tensor, mask_S: Tensor | None, mask_T: Tensor | None
) -> tuple[Tensor, Tensor]:
    """(N, V_S) and (N, V_T) rows compared by a cross-tokenizer loss. 3-D (B, L, V) logits: per sequence, the k-th
    marked student position with the k-th marked teacher position, truncated to the shorter. 2-D (B, V): the rows
    as they are (after their masks)."""
    if logits_S.dim() != logits_T.dim() or logits_S.shape[0] != logits_T.shape[0]:
        raise ValueError(
            f"logits: student shape {tuple(logits_S.shape)} and teacher shape {tuple(logits_T.shape)} hold different "
            "examples; split batches give each model the same texts, in the same order"
        )
    if logits_S.dim() != 3:
        return logits_S, logits_T
    rows_S, rows_T = _sequence_rows(logits_S, mask_S), _sequence_rows(logits_T, mask_T)
    picked_S, picked_T = [], []
    for b, (r_S, r_T) in enumerate(zip(rows_S, rows_T)):
        n = min(r_S.shape[0], r_T.shape[0])
        picked_S.append(logits_S[b, r_S[:n]])
        picked_T.append(logits_T[b, r_T[:n]])
    return torch.cat(picked_S), torch.cat(picked_T)


def cut_student(logits_S: Tensor, prefix: int | None) -> Tensor:
    """The student's logits cut to the shared prefix of padded vocabularies (unchanged without one)."""
    return logits_S[..., :prefix] if prefix is not None and logits_S.shape[-1] > prefix else logits_S


def check_cached_ids(indices: Tensor, width: int, prefix: int | None) -> None:
    """Cached teacher ids index the student's logits: one past its (cut) width is refused, naming the fix."""
    if indices.numel() == 0 or int(indices.max()) < width:
        return
    if prefix is not None:
        raise ValueError(
            f"teacherTopK: a cached teacher id is {int(indices.max())}, in the padding past the {prefix} entries "
            f"the teacher and the student share; cut the teacher's head to the shared size before filling the cache "
            f"(model.resize_token_embeddings({prefix})) or learn from the live teacher"
        )
    raise ValueError(
        f"teacherTopK: a cached teacher id is {int(indices.max())} but the student's logits have {width} entries; "
        "the cache was filled by a teacher with another vocabulary"
    )
