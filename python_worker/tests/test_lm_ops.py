"""Sampling continuations (generate, on-policy batches), held-out NLL, and the causal-LM KD term's step average."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from op_call import call_op
from transformers import GPT2Config, GPT2LMHeadModel

from textbrewer_worker.lm_ops import on_policy_batch, sample_next
from textbrewer_worker.sampled_cache_form import sampled_cache_targets
from textbrewer_worker.sequence_kd import causal_lm_valid_positions
from textbrewer_worker.terms import TermInputs
from textbrewer_worker.terms.causal_lm_kd import CausalLmKdTerm
from textbrewer_worker.training.checkpoint import rng_state, set_rng_state
from textbrewer_worker.wire.ops import WorkerState

VOCAB = 30


def tiny_gpt2(seed: int) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=16, n_layer=2, n_head=2)
    return GPT2LMHeadModel(config)


def worker_with(model: torch.nn.Module) -> tuple[WorkerState, str]:
    state = WorkerState(device="cpu")
    return state, state.add_model(model)


def test_generate_is_seeded_and_keeps_the_prompt() -> None:
    state, handle = worker_with(tiny_gpt2(0))
    prompt = torch.randint(0, VOCAB, (3, 4), generator=torch.Generator().manual_seed(1))
    args = {"model": handle, "inputIds": prompt, "maxNewTokens": 6, "temperature": 1.5, "seed": 7}
    a = call_op(state, "generate", args)["tokens"]
    b = call_op(state, "generate", args)["tokens"]
    c = call_op(state, "generate", {**args, "seed": 8})["tokens"]
    assert a.shape == (3, 10) and torch.equal(a[:, :4], prompt)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_generate_from_the_run_rng_repeats_after_its_state_is_restored() -> None:
    state, handle = worker_with(tiny_gpt2(0))
    args = {"model": handle, "inputIds": torch.zeros(2, 3, dtype=torch.long), "maxNewTokens": 8, "temperature": 2.0}
    torch.manual_seed(5)
    saved = rng_state()  # what a checkpoint stores
    first = call_op(state, "generate", args)["tokens"]
    second = call_op(state, "generate", args)["tokens"]
    set_rng_state(saved)  # what resuming from it restores
    assert torch.equal(call_op(state, "generate", args)["tokens"], first)
    assert not torch.equal(first, second)


def test_top_p_keeps_the_nucleus_only() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    drawn = {int(sample_next(logits, 1.0, 0.7, g)) for _ in range(300)}
    assert drawn == {0, 1}  # 0.5 < 0.7 needs the second; 0.8 ≥ 0.7 stops there
    assert {int(sample_next(logits, 1.0, 1.0, g)) for _ in range(300)} == {0, 1, 2, 3}


def test_on_policy_batch_replaces_the_continuation_and_keeps_the_targets() -> None:
    model = tiny_gpt2(0)
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(2))
    labels = ids.clone()
    labels[:, :3] = -100
    labels[1, 6:] = -100
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    spec = {"lmbda": 1.0, "promptLength": 3, "temperature": 1.0, "topP": 1.0}
    out = on_policy_batch(spec, model, batch)
    assert torch.equal(out["input_ids"][:, :3], ids[:, :3]) and not torch.equal(out["input_ids"], ids)
    assert torch.equal(out["labels"] == -100, labels == -100)
    kept = labels != -100
    assert torch.equal(out["labels"][kept], out["input_ids"][kept])
    assert model.training  # sampled in eval mode, then put back
    assert on_policy_batch({**spec, "lmbda": 0.0}, model, batch) is batch


def test_on_policy_batch_refuses_a_prompt_with_padding_or_no_continuation() -> None:
    model = tiny_gpt2(0)
    ids = torch.zeros(2, 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 1:] = 0
    spec = {"lmbda": 1.0, "promptLength": 2, "temperature": 1.0, "topP": 1.0}
    with pytest.raises(ValueError, match="onPolicy.promptLength: the first 2 tokens of some row are padding"):
        on_policy_batch(spec, model, {"input_ids": ids, "attention_mask": mask})
    with pytest.raises(ValueError, match="onPolicy.promptLength: 5 leaves no continuation"):
        on_policy_batch({**spec, "promptLength": 5}, model, {"input_ids": ids})


def test_lm_nll_is_the_shifted_cross_entropy() -> None:
    model = tiny_gpt2(0).eval()
    state, handle = worker_with(model)
    ids = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    r = call_op(state, "lm_nll", {"model": handle, "inputIds": ids, "attentionMask": mask})
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        mean = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert r["tokens"] == 5 + 3
    assert math.isclose(r["nll"] / r["tokens"], float(mean), rel_tol=1e-5)


def kd_term(accumulation: int) -> CausalLmKdTerm:
    spec = {"loss": "kl", "temperature": 2.0, "beta": 0.5, "alpha": 0.1, "chunkSize": None, "weight": 1.0}
    t = CausalLmKdTerm(spec, 0, torch.device("cpu"))
    t.accumulation_steps = accumulation
    return t


def inputs_for(logits_S: torch.Tensor, logits_T: torch.Tensor, labels: torch.Tensor, **args: Any) -> TermInputs:
    results_S = {"logits": [logits_S], "labels": [labels]}
    return TermInputs(results_S, [], None, [logits_T], None, args)


def test_the_term_divides_by_the_step_tokens_over_the_accumulation() -> None:
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, VOCAB, generator=g), torch.randn(2, 5, VOCAB, generator=g)
    labels = torch.randint(0, VOCAB, (2, 5), generator=g)
    labels[0, 3:] = -100  # 2 + 4 = 6 valid positions
    alone, _ = kd_term(1)(inputs_for(s, t, labels))
    in_step, _ = kd_term(2)(inputs_for(s, t, labels, stepTokens=18))
    assert math.isclose(float(in_step), float(alone) * 6 / 18 * 2, rel_tol=1e-6)
    with pytest.raises(ValueError, match="stepTokens: 5 is below this micro-batch's 6 valid target tokens"):
        kd_term(1)(inputs_for(s, t, labels, stepTokens=5))


def test_the_term_learns_sampled_cache_targets_as_draws_not_as_a_top_k() -> None:
    g = torch.Generator().manual_seed(1)
    s = torch.randn(2, 5, VOCAB, generator=g, requires_grad=True)
    t = torch.randn(2, 5, VOCAB, generator=g)
    labels = torch.randint(0, VOCAB, (2, 5), generator=g)
    labels[1, 2:] = -100
    valid = causal_lm_valid_positions(labels, None, (2, 5))
    n, tau = 16, 2.0

    def sampled_inputs(seed: int) -> TermInputs:
        lp, ids = sampled_cache_targets([t], n, tau, seed)
        topk = {"targets": [lp, ids], "tail": "ignore", "support": "teacher", "form": "sampled"}
        return TermInputs({"logits": [s], "labels": [labels]}, [], None, None, topk, {})

    # one set of draws: τ²·(1/n)·Σ_i (log P_T(j_i) − log q(j_i)) summed over the valid positions, over their number
    lp, ids = sampled_cache_targets([t], n, tau, 7)
    log_q = torch.log_softmax(s.detach() / tau, -1).gather(-1, ids.long())
    want = (tau * tau * (lp - log_q).mean(-1))[valid].sum() / valid.sum()
    got, _ = kd_term(1)(sampled_inputs(7))
    assert math.isclose(float(got.detach()), float(want), rel_tol=1e-5)
    # over many draws, the value and gradient of the dense token KL
    dense, _ = kd_term(1)(inputs_for(s, t, labels))
    (grad_dense,) = torch.autograd.grad(dense, s)
    seeds = range(400)
    mean = sum(kd_term(1)(sampled_inputs(i))[0] for i in seeds) / len(seeds)
    (grad_mean,) = torch.autograd.grad(mean, s)
    assert math.isclose(float(mean.detach()), float(dense.detach()), rel_tol=0.05)
    assert torch.allclose(grad_mean, grad_dense, atol=0.01)
    reverse = CausalLmKdTerm({**kd_term(1).spec, "loss": "reverse_kl"}, 0, torch.device("cpu"))
    with pytest.raises(ValueError, match="'reverse_kl' cannot learn from sampled teacher targets"):
        reverse(sampled_inputs(0))


def test_generate_refuses_more_tokens_than_the_model_has_positions() -> None:
    state, handle = worker_with(tiny_gpt2(0))  # 32 positions
    args = {"model": handle, "inputIds": torch.zeros(1, 8, dtype=torch.long), "maxNewTokens": 25, "seed": 0}
    with pytest.raises(
        ValueError, match="maxNewTokens: 25 new tokens after a prompt of 8 exceed the model's 32 positions"
    ):
        call_op(state, "generate", args)
    assert call_op(state, "generate", {**args, "maxNewTokens": 24})["tokens"].shape == (1, 32)
