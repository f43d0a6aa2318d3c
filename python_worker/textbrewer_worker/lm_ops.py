"""Causal LMs in the worker: sampling continuations (the generate op, on-policy batches) and held-out NLL.

Sampling draws from the worker's RNG unless given a seed, so a training run that samples (on-policy distillation)
resumes exactly: the checkpoint's RNG state covers the draws.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .device import to_device
from .sequence_kd import IGNORE_INDEX, causal_lm_valid_positions
from .wire.ops import WorkerState, op
from .wire.ops_types import GenerateArgs, LmLogEvalArgs, LmNllArgs

__all__ = ["on_policy_batch", "sample_continuations", "sample_next"]


def sample_next(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """One token per row of (batch, vocab) logits: softmax(logits / temperature), cut to the top-p nucleus."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # a token stays while the mass before it is below top_p: the most likely one always stays
        keep = (sorted_p.cumsum(-1) - sorted_p) < top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def sample_continuations(
    model: nn.Module,
    prompt: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(batch, prompt + max_new_tokens) token ids: the prompts and the model's samples, in eval mode, no gradients."""
    if prompt.dim() != 2 or prompt.shape[1] < 1:
        raise ValueError(f"inputIds: expected (batch, prompt length ≥ 1) token ids, got shape {tuple(prompt.shape)}")
    config = getattr(model, "config", None)
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    if isinstance(limit, int) and prompt.shape[1] + max_new_tokens > limit:
        raise ValueError(
            f"maxNewTokens: {max_new_tokens} new tokens after a prompt of {prompt.shape[1]} exceed the model's "
            f"{limit} positions; ask for at most {limit - prompt.shape[1]}"
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(input_ids=prompt, use_cache=True)
            tokens = [prompt]
            for i in range(max_new_tokens):
                token = sample_next(out.logits[:, -1, :], temperature, top_p, generator)[:, None]
                tokens.append(token)
                if i + 1 < max_new_tokens:
                    out = model(input_ids=token, past_key_values=out.past_key_values, use_cache=True)
    finally:
        model.train(was_training)
    return torch.cat(tokens, dim=1)


def on_policy_batch(spec: dict[str, Any], model: nn.Module, batch: Any) -> Any:
    """With probability spec['lmbda'] (one draw from the torch RNG), the batch with every token after the prompt
    replaced by the model's samples; labels keep their -100 positions, so the valid targets stay the same."""
    lam = float(spec["lmbda"])
    if lam <= 0.0 or float(torch.rand(())) >= lam:
        return batch
    if not isinstance(batch, dict) or "input_ids" not in batch:
        raise ValueError("onPolicy: batches must be records with input_ids (one batch for both models)")
    ids: torch.Tensor = batch["input_ids"]
    prompt_length = int(spec["promptLength"])
    if ids.dim() != 2 or prompt_length >= ids.shape[1]:
        raise ValueError(
            f"onPolicy.promptLength: {prompt_length} leaves no continuation in input_ids of shape {tuple(ids.shape)}; "
            "use a prompt shorter than the sequences"
        )
    mask = batch.get("attention_mask")
    if mask is not None and not bool((mask[:, :prompt_length] != 0).all()):
        raise ValueError(
            f"onPolicy.promptLength: the first {prompt_length} tokens of some row are padding (attention_mask 0); "
            "the prompts must be whole: pad on the right, after the prompt"
        )
    sampled = sample_continuations(
        model, ids[:, :prompt_length], ids.shape[1] - prompt_length, float(spec["temperature"]), float(spec["topP"])
    )
    out = dict(batch)
    out["input_ids"] = sampled.to(ids.dtype)
    labels = batch.get("labels")
    if isinstance(labels, torch.Tensor):
        out["labels"] = torch.where(labels == IGNORE_INDEX, labels, out["input_ids"].to(labels.dtype))
    return out


@op("generate")
def generate(state: WorkerState, args: GenerateArgs) -> dict[str, Any]:
    model = state.model(args)
    prompt = to_device(args["inputIds"], state.torch_device).long()
    generator = None
    if args["seed"] is not None:
        generator = torch.Generator(device=state.torch_device).manual_seed(int(args["seed"]))
    tokens = sample_continuations(
        model, prompt, int(args["maxNewTokens"]), float(args["temperature"]), float(args["topP"]), generator
    )
    return {"tokens": tokens}


@op("lm_nll")
def lm_nll(state: WorkerState, args: LmNllArgs) -> dict[str, Any]:
    model = state.model(args)
    device = state.torch_device
    ids = to_device(args["inputIds"], device).long()
    mask = to_device(args["attentionMask"], device) if "attentionMask" in args else None
    labels = to_device(args["labels"], device).long() if "labels" in args else ids
    valid = causal_lm_valid_positions(labels, mask, (ids.shape[0], ids.shape[1]))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, **({"attention_mask": mask} if mask is not None else {})).logits
    finally:
        model.train(was_training)
    targets = torch.roll(labels, -1, dims=1)
    logprobs = torch.log_softmax(logits[valid].float(), dim=-1)
    nll = -logprobs.gather(-1, targets[valid].unsqueeze(-1)).sum()
    return {"nll": float(nll), "tokens": int(valid.sum())}


@op("lm_log_eval")
def lm_log_eval(state: WorkerState, args: LmLogEvalArgs) -> bool:
    """Writes evaluation scalars and texts to the TensorBoard log of the training run configured now, if it has one."""
    session = state.extensions.get("train_session")  # train_ops.SESSION_KEY (train_ops imports the session)
    writer = getattr(session, "writer", None)
    if writer is None:
        return False
    for name, value in args["scalars"].items():
        writer.add_scalar(f"eval/{name}", float(value), args["step"])
    for name, text in args["texts"].items():
        writer.add_text(f"eval/{name}", text, args["step"])
    writer.flush()
    return True
