"""seed makes new weights reproducible; set_trainable: freezing by a name pattern removes the parameters from the
optimizer and from backward."""

from __future__ import annotations

import pytest
import torch
from op_call import call_op
from transformers import BertConfig, BertForSequenceClassification

from textbrewer_worker import prep_ops  # noqa: F401  (registers the ops)
from textbrewer_worker.training.optim import parameter_groups
from textbrewer_worker.wire.ops import WorkerState
from textbrewer_worker.wire.protocol import InvalidArgsError


def tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return BertForSequenceClassification(cfg)


def test_freeze_and_unfreeze_by_pattern() -> None:
    state = WorkerState(device="cpu")
    model = tiny_bert()
    handle = state.add_model(model)
    total = sum(p.numel() for p in model.parameters())
    out = call_op(state, "set_trainable", {"model": handle, "pattern": r"word_embeddings", "trainable": False})
    assert out["matched"] == ["bert.embeddings.word_embeddings.weight"]
    assert out["parameters"] == total and out["trainableParameters"] == total - 50 * 16
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad
    grouped = [p for g in parameter_groups(model, []) for p in g["params"]]
    assert all(p is not model.bert.embeddings.word_embeddings.weight for p in grouped)
    ids = torch.randint(0, 50, (2, 5))
    model(input_ids=ids, labels=torch.tensor([0, 1])).loss.backward()
    assert model.bert.embeddings.word_embeddings.weight.grad is None
    assert model.classifier.weight.grad is not None
    back = call_op(state, "set_trainable", {"model": handle, "pattern": r"embeddings", "trainable": True})
    assert back["trainableParameters"] == total and len(back["matched"]) == 5


def test_pattern_errors() -> None:
    state = WorkerState(device="cpu")
    handle = state.add_model(tiny_bert())
    with pytest.raises(ValueError, match="matches no parameter"):
        call_op(state, "set_trainable", {"model": handle, "pattern": "nothing_like_this", "trainable": False})
    with pytest.raises(ValueError, match="not a valid regular expression"):
        call_op(state, "set_trainable", {"model": handle, "pattern": "(", "trainable": False})
    with pytest.raises(InvalidArgsError, match="set_trainable: args.trainable must be boolean, got 'no'"):
        call_op(state, "set_trainable", {"model": handle, "pattern": "x", "trainable": "no"})


def test_seed_makes_a_new_head_reproducible() -> None:
    state = WorkerState(device="cpu")
    call_op(state, "seed", {"seed": 5})
    a = tiny_bert_unseeded()
    call_op(state, "seed", {"seed": 5})
    b = tiny_bert_unseeded()
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    call_op(state, "seed", {"seed": 6})
    assert not torch.equal(a.classifier.weight, tiny_bert_unseeded().classifier.weight)
    with pytest.raises(InvalidArgsError, match="seed: args.seed must be bigger than or equal to 0, got -1"):
        call_op(state, "seed", {"seed": -1})


def tiny_bert_unseeded() -> BertForSequenceClassification:
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return BertForSequenceClassification(cfg)
