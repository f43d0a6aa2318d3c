"""BERT-of-Theseus replacement mechanics: p = 0 is the predecessor, p = 1 the successor, seeded draws, the schedule."""

import pytest
import torch
from op_call import call_op
from transformers import BertConfig, BertForSequenceClassification

from textbrewer_worker.theseus import Replacement, TheseusModel, even_groups
from textbrewer_worker.wire.ops import OPS, WorkerState


def make_teacher(layers: int = 4) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=2,
    )
    return BertForSequenceClassification(config).eval()


def create(state: WorkerState, teacher: str, replacement: dict, **extra: object) -> TheseusModel:
    handle = call_op(state, "theseus_create", {"teacher": teacher, "numLayers": 2, "replacement": replacement, **extra})
    model = state.models[handle["handle"]]
    assert isinstance(model, TheseusModel)
    return model


BATCH = {"input_ids": torch.randint(5, 40, (3, 7)), "attention_mask": torch.ones(3, 7, dtype=torch.int64)}


def test_p0_is_the_predecessor_and_p1_the_extracted_successor_in_training_mode() -> None:
    state = WorkerState(device="cpu")
    teacher = make_teacher()
    handle = state.add_model(teacher)
    expected = teacher(**BATCH).logits
    never = create(state, handle, {"type": "constant", "rate": 0.0}).train()
    assert torch.equal(never(**BATCH).logits, expected)
    assert never.last_replaced == [False, False]
    always = create(state, handle, {"type": "constant", "rate": 1.0}, layerMap=[1, 3]).train()
    with torch.no_grad():  # train the shared head a little, so extract must carry it over
        always.predecessor.classifier.weight.add_(0.5)
    out = always(**BATCH).logits
    assert always.last_replaced == [True, True]
    assert not torch.equal(out, expected)
    successor = OPS["theseus_extract"](state, {"model": always_handle(state, always)})
    alone = state.models[successor["handle"]]
    assert isinstance(alone, BertForSequenceClassification) and alone.config.num_hidden_layers == 2
    assert torch.equal(alone.eval()(**BATCH).logits, out)
    assert torch.equal(always.eval()(**BATCH).logits, out)  # eval runs the successor alone
    assert torch.equal(teacher(**BATCH).logits, expected)  # the teacher itself is left as it was


def always_handle(state: WorkerState, model: TheseusModel) -> str:
    return next(h for h, m in state.models.items() if m is model)


def test_draws_are_seeded_follow_the_rate_and_live_in_the_buffers() -> None:
    state = WorkerState(device="cpu")
    handle = state.add_model(make_teacher())
    a = create(state, handle, {"type": "constant", "rate": 0.5}, seed=7)
    b = create(state, handle, {"type": "constant", "rate": 0.5}, seed=7)
    c = create(state, handle, {"type": "constant", "rate": 0.5}, seed=8)
    draws_a = [a.draw() for _ in range(200)]
    assert draws_a == [b.draw() for _ in range(200)]
    assert draws_a != [c.draw() for _ in range(200)]
    share = sum(sum(d) for d in draws_a) / 400
    assert 0.4 < share < 0.6
    # restoring the buffers (as a checkpoint does) restores the sequence
    saved = {k: v.clone() for k, v in a.state_dict().items() if k.startswith("theseus_")}
    ahead = [a.draw() for _ in range(5)]
    a.load_state_dict({**a.state_dict(), **saved})
    assert [a.draw() for _ in range(5)] == ahead
    assert int(a.theseus_step) == 205


def test_linear_curriculum_and_groups() -> None:
    linear = Replacement.read({"type": "linear", "base": 0.3, "k": 0.1})
    assert [linear.rate(t) for t in (0, 2, 7, 100)] == pytest.approx([0.3, 0.5, 1.0, 1.0])
    assert even_groups(6, 4) == [(0, 1), (2, 3), (4, 4), (5, 5)]
    state = WorkerState(device="cpu")
    handle = state.add_model(make_teacher(6))
    m = create(state, handle, {"type": "linear", "base": 0.0, "k": 1.0}, groups=[[0, 3], [4, 5]])
    m.train()
    assert m.draw() == [False, False] and m.draw() == [True, True]
    assert len(m.mixed_layers([True, False])) == 3
    assert not any(p.requires_grad for p in m.predecessor.bert.encoder.layer.parameters())
    assert all(p.requires_grad for p in m.successor.bert.encoder.layer.parameters())
    assert m.predecessor.classifier.weight.requires_grad


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"replacement": {"type": "cosine"}}, "replacement: expected"),
        ({"replacement": {"type": "constant", "rate": 1.5}}, r"replacement.rate: 1.5 must be a probability"),
        ({"replacement": {"type": "linear", "base": 0.3, "k": -1}}, r"replacement.k: -1"),
        ({"numLayers": 0}, r"numLayers: 0 must be a positive integer"),
        ({"numLayers": 9}, r"numLayers: 9 but the teacher has 4 layers"),
        ({"groups": [[0, 0], [2, 3]]}, r"groups: .* contiguous groups in order \(a group starts at 1\)"),
        ({"groups": [[0, 1], [2, 2]]}, r"groups: .* cover layers 0..2 but the teacher has 0..3"),
    ],
)
def test_bad_arguments_name_the_field(args: dict, message: str) -> None:
    state = WorkerState(device="cpu")
    handle = state.add_model(make_teacher())
    # the handler's own checks, past the schema: the args as validation leaves them (defaults filled in)
    base = {"teacher": handle, "numLayers": 2, "replacement": {"type": "constant", "rate": 0.5}, "groups": None}
    base |= {"layerMap": None, "seed": 0}
    with pytest.raises(ValueError, match=message):
        OPS["theseus_create"](state, {**base, **args})
