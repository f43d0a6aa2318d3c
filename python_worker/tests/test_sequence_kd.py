"""Causal-LM token KD: the shift, the valid positions and the per-token average over an optimizer step."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from textbrewer_worker.sequence_kd import causal_lm_kd_loss, causal_lm_valid_positions, count_valid_tokens

VOCAB = 40


def tiny_gpt2(seed: int, layers: int) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=16, n_layer=layers, n_head=2)
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    return GPT2LMHeadModel(config).double().eval()


def sequences() -> list[tuple[list[int], int]]:
    """Four sequences of different lengths, each with a prompt of the given length (no targets there)."""
    g = torch.Generator().manual_seed(3)
    lengths, prompts = [3, 9, 5, 12], [1, 4, 2, 3]
    return [(torch.randint(0, VOCAB, (n,), generator=g).tolist(), p) for n, p in zip(lengths, prompts)]


def collate(items: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
    """Right-padded to the longest of these items; labels −100 on the prompt and the padding."""
    width = max(len(ids) for ids, _ in items)
    input_ids = torch.zeros(len(items), width, dtype=torch.long)
    attention = torch.zeros(len(items), width, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    for row, (ids, prompt) in enumerate(items):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        labels[row, prompt : len(ids)] = torch.tensor(ids[prompt:])
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def step_gradient(groups: list[list[int]], per_step_tokens: bool) -> torch.Tensor:
    """One optimizer step's accumulated gradient (flattened) over micro-batches made of the given sequences."""
    student, teacher = tiny_gpt2(1, 1), tiny_gpt2(2, 2)
    data = sequences()
    batches = [collate([data[i] for i in group]) for group in groups]
    total = sum(count_valid_tokens(b["labels"], b["attention_mask"]) for b in batches)
    for b in batches:
        logits_S = student(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        with torch.no_grad():
            logits_T = teacher(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        loss = causal_lm_kd_loss(
            "jsd",
            logits_S,
            logits_T,
            2.0,
            labels=b["labels"],
            attention_mask=b["attention_mask"],
            step_tokens=total if per_step_tokens else None,
            accumulation_steps=len(groups),
            chunk_size=5,
        )
        (loss / len(groups)).backward()  # as the training step divides by gradientAccumulationSteps
    return torch.cat([p.grad.reshape(-1) for p in student.parameters() if p.grad is not None])


def test_the_same_sequences_batched_differently_give_the_same_gradient() -> None:
    one_by_four = step_gradient([[0, 1, 2, 3]], per_step_tokens=True)
    two_by_two = step_gradient([[0, 1], [2, 3]], per_step_tokens=True)
    other_split = step_gradient([[3, 0], [2, 1]], per_step_tokens=True)
    torch.testing.assert_close(two_by_two, one_by_four, atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(other_split, one_by_four, atol=1e-12, rtol=1e-9)
    # a mean of micro-batch means weighs the tokens of short micro-batches more: a different gradient
    mean_of_means = step_gradient([[0, 1], [2, 3]], per_step_tokens=False)
    assert (mean_of_means - one_by_four).abs().max().item() > 1e-6


def test_position_i_counts_when_token_i_plus_1_is_a_target() -> None:
    labels = torch.tensor([[-100, 5, 6, -100], [7, 8, 9, 1]])
    attention = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0]])
    valid = causal_lm_valid_positions(labels, attention, (2, 4))
    assert valid.tolist() == [[True, True, False, False], [True, True, False, False]]
    assert causal_lm_valid_positions(None, attention, (2, 4)).tolist() == [[True, True, False, False]] * 2
    assert count_valid_tokens(labels, None) == 2 + 3


def test_the_loss_is_the_per_token_mean_of_the_step() -> None:
    student, teacher = tiny_gpt2(1, 1), tiny_gpt2(2, 2)
    b = collate(sequences())
    with torch.no_grad():
        s = student(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        t = teacher(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    valid = causal_lm_valid_positions(b["labels"], b["attention_mask"], (4, 12))
    p_t, log_s = torch.softmax(t[valid], -1), torch.log_softmax(s[valid], -1)
    want = (p_t * (p_t.log() - log_s)).sum(-1).mean()
    got = causal_lm_kd_loss("kl", s, t, labels=b["labels"], attention_mask=b["attention_mask"])
    assert got.item() == pytest.approx(want.item(), abs=1e-12)


def test_bad_inputs_name_the_field() -> None:
    s = torch.zeros(2, 4, VOCAB, dtype=torch.float64)
    with pytest.raises(ValueError, match="give labels"):
        causal_lm_kd_loss("kl", s, s)
    with pytest.raises(ValueError, match=r"labels shape \(2, 3\) != logits positions \(2, 4\)"):
        causal_lm_kd_loss("kl", s, s, labels=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="step_tokens 1 is below this micro-batch's 6 valid tokens"):
        causal_lm_kd_loss("kl", s, s, labels=torch.zeros(2, 4, dtype=torch.long), step_tokens=1)
