"""Token-level KD of a causal LM: the next-token shift and the per-token average of the whole optimizer step.

The valid positions are those of sequence_kd (token i + 1 is a target: the adaptor's `labels` ≠ -100 and
`inputs_mask` ≠ 0). The sum over them is divided by the step's valid tokens (`stepTokens`, counted by the loop over
every micro-batch of the step and every rank), so however the sequences are batched each token weighs the same.
The training step divides each micro-batch's loss by gradientAccumulationSteps and DDP averages gradients over the
ranks, so the denominator here is stepTokens / (gradientAccumulationSteps · ranks).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from ..llm_losses import token_kd_loss
from ..sampled_cache_form import sampled_kd_loss
from ..sequence_kd import causal_lm_valid_positions
from ..sparse_llm_losses import SPARSE_TOKEN_KINDS, SparseTail, sparse_token_kd_loss
from ..vocab_align import check_cached_ids, cut_student
from .base import Tensor, Term, TermInputs, term

CAUSAL_LM_KD_LOG_NAME = "unweighted_causal_lm_kd_loss"

# the teacher cache's tail names (its "ignore" renormalises the top-k)
_CACHE_TAILS: dict[str, SparseTail] = {"ignore": "renormalize", "uniform": "uniform", "bucket": "bucket"}


def _one(results: dict[str, Any], key: str) -> Tensor | None:
    value = results.get(key)
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"causal_lm_kd: the adaptor gives {len(value)} '{key}' tensors; give one")
        return value[0]
    return value


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@term("causal_lm_kd")
class CausalLmKdTerm(Term):
    """weight · Σ_{valid positions} τ²·D(student, teacher) / (stepTokens / (gas · ranks)), dense or top-k targets."""

    def __init__(self, spec: dict[str, Any], index: int, device: torch.device) -> None:
        super().__init__(spec, index, device)
        self.loss_kind = spec["loss"]
        self.temperature = float(spec["temperature"])
        self.beta = float(spec["beta"])
        self.alpha = float(spec["alpha"])
        self.chunk_size: int | None = spec["chunkSize"]
        self.weight = float(spec["weight"])
        self.accumulation_steps = 1  # the session sets the plan's gradientAccumulationSteps
        # the shared width padded vocabularies are cut to (vocab_align.check_run_vocabularies, at configure)
        self.vocab_prefix: int | None = None

    def __call__(self, inputs: TermInputs) -> tuple[Tensor | None, dict[str, Tensor]]:
        logits_S = _one(inputs.results_S, "logits")
        if logits_S is None:
            raise KeyError("logits: the student adaptor must return 'logits' for causal-LM KD")
        if logits_S.dim() != 3:
            raise ValueError(f"causal_lm_kd: expected (batch, length, vocab) logits, got {tuple(logits_S.shape)}")
        labels = _one(inputs.results_S, "labels")
        mask = _one(inputs.results_S, "inputs_mask")
        valid = causal_lm_valid_positions(labels, mask, (logits_S.shape[0], logits_S.shape[1]))
        local = int(valid.sum())
        step_tokens = inputs.args.get("stepTokens")
        ranks = world_size()
        if step_tokens is None:
            step_tokens = max(local, 1) * self.accumulation_steps * ranks
        elif ranks == 1 and step_tokens < local:
            raise ValueError(
                f"stepTokens: {step_tokens} is below this micro-batch's {local} valid target tokens; count the "
                "targets of every micro-batch of the optimizer step"
            )
        denominator = max(int(step_tokens), 1) / (self.accumulation_steps * ranks)
        if inputs.teacher_topk is not None:
            kd = self.sparse(logits_S, valid, inputs.teacher_topk, denominator)
        else:
            logits_T = inputs.target_logits
            if logits_T is None or len(logits_T) != 1:
                raise KeyError("logits: the teacher adaptor must return one 'logits' tensor for causal-LM KD")
            prefix = self.vocab_prefix
            kd = token_kd_loss(
                self.loss_kind,
                cut_student(logits_S, prefix),
                logits_T[0][..., :prefix] if prefix is not None else logits_T[0],
                self.temperature,
                mask=valid,
                num_tokens=denominator,
                beta=self.beta,
                alpha=self.alpha,
                chunk_size=self.chunk_size,
            )
        return kd * self.weight, {CAUSAL_LM_KD_LOG_NAME: kd}

    def sparse(self, logits_S: Tensor, valid: Tensor, topk: dict[str, Any], denominator: float) -> Tensor:
        if topk.get("form") == "sampled":
            return self.sampled(logits_S, valid, topk, denominator)
        if self.loss_kind not in SPARSE_TOKEN_KINDS:
            raise ValueError(
                f"causal_lm_kd.loss: '{self.loss_kind}' cannot learn from top-k teacher targets; use "
                f"{', '.join(SPARSE_TOKEN_KINDS)} or cache dense logits (teacherCache.topK: null)"
            )
        targets = topk["targets"]
        if len(targets) != 2:
            raise ValueError(f"teacherTopK: {len(targets) // 2} cached logits tensors for one student logits tensor")
        logits_S = cut_student(logits_S, self.vocab_prefix)
        check_cached_ids(targets[1], logits_S.shape[-1], self.vocab_prefix)
        return sparse_token_kd_loss(
            self.loss_kind,  # type: ignore[arg-type]
            logits_S,
            targets[0],
            targets[1],
            self.temperature,
            tail=_CACHE_TAILS[topk["tail"]],
            support=topk["support"],
            mask=valid,
            num_tokens=denominator,
            beta=self.beta,
            chunk_size=self.chunk_size,
        )

    def sampled(self, logits_S: Tensor, valid: Tensor, topk: dict[str, Any], denominator: float) -> Tensor:
        """Forward KL from n teacher draws per position (teacherCache.samples): (1/n)·Σ_i log P_T(j_i) − log q(j_i)."""
        if self.loss_kind != "kl":
            raise ValueError(
                f"causal_lm_kd.loss: '{self.loss_kind}' cannot learn from sampled teacher targets (teacherCache.samples); "
                "use token_kl, top-k targets (teacherCache.topK) or dense logits"
            )
        if topk["support"] != "teacher":
            raise ValueError(f"teacherCache.support: '{topk['support']}' applies to top-k targets, not to sampled ones")
        targets = topk["targets"]
        if len(targets) != 2:
            raise ValueError(f"teacherTopK: {len(targets) // 2} cached logits tensors for one student logits tensor")
        logits_S = cut_student(logits_S, self.vocab_prefix)
        check_cached_ids(targets[1], logits_S.shape[-1], self.vocab_prefix)
        return sampled_kd_loss(
            "kl",
            logits_S,
            targets[0],
            targets[1],
            self.temperature,
            mask=valid,
            num_tokens=denominator,
            chunk_size=self.chunk_size,
        )
