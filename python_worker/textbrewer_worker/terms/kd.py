"""KD on logits: one kdLossType at a (scheduled) temperature, dense or from cached top-k targets."""

from __future__ import annotations

from typing import Any

import torch

from ..losses import get_loss, get_sparse_kd_loss, probability_shift_, select_logits
from ..sampled_cache_form import get_sampled_kd_loss
from ..sequence_kd import causal_lm_valid_positions
from ..sparse_teacher_forms import index_dtype
from ..training.temperature import build_temperature
from ..uld_loss import CROSS_TOKENIZER_LOSSES
from ..vocab_align import check_cached_ids, cross_tokenizer_rows, cut_student
from .base import Tensor, Term, TermInputs, term

KD_LOG_NAME = "unweighted_kd_loss"


def masks_for(logits: list[Tensor], masks: list[Tensor] | None, side: str) -> list[Tensor] | None:
    """One logits_mask per logits tensor: a single mask applies to every one (as in TextBrewer), else the
    counts must agree (zip would silently drop the logits past the last mask)."""
    if masks is None:
        return None
    if len(masks) == 1:
        return masks * len(logits)
    if len(masks) != len(logits):
        raise ValueError(
            f"logits_mask: the {side} adaptor gives {len(masks)} logits_mask tensors for {len(logits)} logits "
            "tensors; give one mask for all of them or one per logits tensor"
        )
    return masks


def topk_targets(logits: list[Tensor], k: int, temperature: float) -> list[Tensor]:
    """Per logits tensor: the top-k teacher log-probabilities at `temperature` (full-vocabulary softmax) and their
    indices (int32), as [values_0, indices_0, values_1, indices_1, ...]."""
    out: list[Tensor] = []
    for l in logits:
        logprobs = torch.log_softmax(l.float() / temperature, dim=-1)
        values, indices = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
        out.extend([values, indices.to(index_dtype(logprobs.shape[-1]))])  # int32 ids: half the bytes of int64
    return out


def positions_of(logits: list[Tensor], results: dict[str, Any], side: str) -> list[Tensor | None]:
    """Per logits tensor, the positions a cross-tokenizer loss compares: the logits_mask, else the causal-LM
    positions of (B, L) labels (sequence_kd's shift), else None (every position)."""
    masks = masks_for(logits, results.get("logits_mask"), side)
    if masks is not None:
        return list(masks)
    labels = results.get("labels")
    out: list[Tensor | None] = []
    for i, l in enumerate(logits):
        y = None if labels is None else labels[min(i, len(labels) - 1)]
        fits = y is not None and l.dim() == 3 and tuple(y.shape) == tuple(l.shape[:2])
        out.append(causal_lm_valid_positions(y, None, (l.shape[0], l.shape[1])) if fits else None)
    return out


@term("kd")
class KdTerm(Term):
    """Σ over logits tensors of kd_fn(student, teacher, τ), times the step's kdWeight (its schedule runs in the loop).

    With `required`, an adaptor without logits is an error (Basic, MultiTeacher, EMD); otherwise KD is skipped.
    """

    def __init__(self, spec: dict[str, Any], index: int, device: torch.device) -> None:
        super().__init__(spec, index, device)
        self.loss_type: str = spec["lossType"]
        self.temperature = float(spec["temperature"])
        self.temperature_fn = build_temperature(spec["temperatureScheduler"])
        self.probability_shift = bool(spec["probabilityShift"])
        self.required = bool(spec["required"])
        self.kd_fn = get_loss("kd", self.loss_type)
        # a loss over distributions, not token ids (ULD): logits may differ in vocabulary and, split, in positions
        self.cross_tokenizer = self.loss_type in CROSS_TOKENIZER_LOSSES
        # the shared width padded vocabularies are cut to (vocab_align.check_run_vocabularies, at configure)
        self.vocab_prefix: int | None = None

    def __call__(self, inputs: TermInputs) -> tuple[Tensor | None, dict[str, Tensor]]:
        results_S = inputs.results_S
        if self.required and (
            "logits" not in results_S or (inputs.target_logits is None and inputs.teacher_topk is None)
        ):
            side = "student" if "logits" not in results_S else "teacher"
            raise KeyError(f"logits: the {side} adaptor must return 'logits' for this distiller")
        weight = float(inputs.args["kdWeight"])
        if inputs.teacher_topk is not None:
            if "logits" not in results_S:
                raise KeyError(
                    "logits: the student adaptor must return 'logits' to learn from cached top-k teacher logits"
                )
            kd = self.sparse(results_S["logits"], results_S.get("logits_mask"), inputs.teacher_topk)
            return kd * weight, {KD_LOG_NAME: kd}
        if "logits" in results_S and inputs.target_logits is not None and self.cross_tokenizer:
            kd = self.across_tokenizers(results_S, inputs.first_T, inputs.target_logits)
            return kd * weight, {KD_LOG_NAME: kd}
        if "logits" in results_S and inputs.target_logits is not None:
            fallback = results_S.get("logits_mask") if inputs.teacher_logits is not None else None
            kd = self.dense(
                results_S["logits"],
                inputs.target_logits,
                results_S.get("logits_mask"),
                inputs.first_T.get("logits_mask", fallback),
                results_S.get("labels"),
            )
            return kd * weight, {KD_LOG_NAME: kd}
        return None, {}

    def dense(
        self,
        logits_S: list[Tensor],
        logits_T: list[Tensor],
        masks_S: list[Tensor] | None,
        masks_T: list[Tensor] | None,
        labels: list[Tensor] | None,
    ) -> Tensor:
        if len(logits_S) != len(logits_T):
            raise ValueError(
                f"logits: the student gives {len(logits_S)} logits tensors and the teacher {len(logits_T)}"
            )
        masks_S = masks_for(logits_S, masks_S, "student")
        masks_T = masks_for(logits_T, masks_T, "teacher")
        if masks_S is not None:
            logits_S = [select_logits(l, m) for l, m in zip(logits_S, masks_S)]
        if masks_T is not None:
            logits_T = [select_logits(l, m) for l, m in zip(logits_T, masks_T)]
        if self.probability_shift:
            if labels is None:
                raise ValueError("probabilityShift: the student adaptor must return 'labels'")
            if len(labels) != len(logits_T):
                raise ValueError(
                    f"probabilityShift: the student adaptor gives {len(labels)} labels tensors for {len(logits_T)} "
                    "logits tensors; give one labels tensor per logits tensor"
                )
            # clone: never mutate the caller's tensors (e.g. cached teacher logits)
            logits_T = [probability_shift_(l.clone(), y) for l, y in zip(logits_T, labels)]
        total: Tensor | float = 0.0
        for l_S, l_T in zip(logits_S, logits_T):
            if self.vocab_prefix is not None and l_S.shape[:-1] == l_T.shape[:-1] and l_S.shape[-1] != l_T.shape[-1]:
                l_S, l_T = l_S[..., : self.vocab_prefix], l_T[..., : self.vocab_prefix]
            if l_S.shape != l_T.shape:
                raise ValueError(
                    f"logits: student shape {tuple(l_S.shape)} != teacher shape {tuple(l_T.shape)} "
                    "(after logits_mask selection); the two must have the same classes and selected rows"
                )
            temperature = self.temperature_fn(l_S, l_T, self.temperature)
            total = total + self.kd_fn(l_S, l_T, temperature)
        return total  # type: ignore[return-value]

    def across_tokenizers(self, results_S: dict[str, Any], results_T: dict[str, Any], logits_T: list[Tensor]) -> Tensor:
        """A cross-tokenizer loss on the positions vocab_align.cross_tokenizer_rows pairs: each side's logits_mask,
        else, when its adaptor returns (B, L) labels, the causal-LM positions whose next token is a target."""
        logits_S = results_S["logits"]
        if len(logits_S) != len(logits_T):
            raise ValueError(
                f"logits: the student gives {len(logits_S)} logits tensors and the teacher {len(logits_T)}"
            )
        if self.probability_shift:
            raise ValueError(
                f"probabilityShift: kdLossType '{self.loss_type}' compares models across tokenizers, whose labels are "
                "ids of different vocabularies; turn probabilityShift off"
            )
        masks_S = positions_of(logits_S, results_S, "student")
        masks_T = positions_of(logits_T, results_T, "teacher")
        total: Tensor | float = 0.0
        for l_S, l_T, m_S, m_T in zip(logits_S, logits_T, masks_S, masks_T):
            rows_S, rows_T = cross_tokenizer_rows(l_S, l_T, m_S, m_T)
            temperature = self.temperature_fn(rows_S, rows_T, self.temperature)
            total = total + self.kd_fn(rows_S, rows_T, temperature)
        return total  # type: ignore[return-value]

    def sparse(self, logits_S: list[Tensor], masks_S: list[Tensor] | None, topk: dict[str, Any]) -> Tensor:
        flat = topk["targets"]
        pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        if len(pairs) != len(logits_S):
            raise ValueError(f"teacherTopK: {len(pairs)} cached logits for {len(logits_S)} student logits")
        sampled = topk.get("form") == "sampled"
        if self.probability_shift:
            # the shift swaps the teacher's top logit with the label's, which a top-k or sampled target may not hold
            raise ValueError(
                "probabilityShift: sparse teacher targets (top-k or sampled) hold only some of the teacher's "
                "log-probabilities, so the label's cannot be swapped in; turn probabilityShift off, or use dense "
                "teacher logits (teacherCache.topK / samples: null, a teacher service client without topK)"
            )
        loss_fn = get_sampled_kd_loss(self.loss_type) if sampled else get_sparse_kd_loss(self.loss_type)
        # only the token losses choose a support; the classic ce/kl take the teacher's top-k
        support = {"support": topk["support"]} if topk["support"] != "teacher" else {}
        if support and (sampled or not self.loss_type.startswith("token_")):
            raise ValueError(
                f"teacherCache.support: '{topk['support']}' needs kdLossType token_kl, token_reverse_kl or token_jsd; "
                f"'{self.loss_type}' learns on the teacher's top-k (support: 'teacher')"
            )
        masks = masks_for(logits_S, masks_S, "student")
        total: Tensor | float = 0.0
        for i, (l_S, (values, indices)) in enumerate(zip(logits_S, pairs)):
            if masks is not None:
                l_S, values, indices = (select_logits(x, masks[i]) for x in (l_S, values, indices))
            l_S = cut_student(l_S, self.vocab_prefix)
            check_cached_ids(indices, l_S.shape[-1], self.vocab_prefix)
            if sampled:  # values: the teacher's log-probabilities of the drawn ids
                total = total + loss_fn(l_S, values, indices, self.temperature)
            else:
                total = total + loss_fn(l_S, values, indices, self.temperature, tail=topk["tail"], **support)
        return total  # type: ignore[return-value]
