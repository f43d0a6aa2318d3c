"""The teacher service's pieces without sockets: what a plan reads, the selection and its restore, and how waiting
requests are grouped and their stacked outputs split."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
import torch

from textbrewer_worker.service.service_wire import (
    TOPK_KEY,
    pack,
    restore_outputs,
    select_outputs,
    unpack,
    wanted_outputs,
)
from textbrewer_worker.service.teacher_client import topk_request
from textbrewer_worker.service.teacher_service import Pending, TeacherServer, split, stack, take_group


def test_wanted_outputs_reads_the_terms() -> None:
    terms = [
        {"kind": "kd"},
        {"kind": "match", "feature": "hidden", "layerT": 4},
        {"kind": "match", "feature": "hidden", "layerT": [4, -1]},
        {"kind": "match", "feature": "attention", "layerT": 2},
        {"kind": "hard_label"},
    ]
    assert wanted_outputs(terms) == {"logits": "all", "logits_mask": "all", "hidden": [4, -1], "attention": [2]}
    # with top-k targets the dense logits stay in the service
    assert wanted_outputs(terms, topk=True) == {"hidden": [4, -1], "attention": [2]}
    assert wanted_outputs([{"kind": "causal_lm_kd"}], topk=True) == {}
    assert wanted_outputs([{"kind": "emd"}]) is None
    assert wanted_outputs([{"kind": "registered", "name": "x"}]) is None


def test_selection_keeps_the_matched_layers_and_restores_them_at_full_length() -> None:
    hidden = [torch.randn(2, 3, 4) for _ in range(5)]
    results = {"logits": [torch.randn(2, 3)], "hidden": hidden, "losses": [torch.tensor(1.0)]}
    sel = select_outputs(results, {"logits": "all", "hidden": [1, -1]}, torch.bfloat16)
    assert set(sel) == {"logits", "hidden"}
    header, body = unpack([bytes(f) for f in pack({"id": 3}, sel)])
    assert header["id"] == 3
    back = restore_outputs(body, torch.device("cpu"))
    assert len(back["hidden"]) == 5
    assert [i for i, t in enumerate(back["hidden"]) if t is not None] == [1, 4]
    assert back["hidden"][4].dtype == torch.float32
    assert torch.equal(back["hidden"][4], hidden[4].to(torch.bfloat16).float())
    exact = restore_outputs(select_outputs(results, None, torch.float32), torch.device("cpu"))
    assert torch.equal(exact["logits"][0], results["logits"][0])
    assert len(exact["hidden"]) == 5


def _pending(client: bytes, rows: int, seq: int = 6, want: Any = "default") -> Pending:
    batch = {"input_ids": torch.zeros(rows, seq, dtype=torch.int64)}
    header = {"id": 1, "want": {"logits": "all"} if want == "default" else want, "dtype": "float32"}
    return Pending(client, header, batch, [])


def test_groups_stack_only_other_clients_with_the_same_shapes_within_the_row_limit() -> None:
    a1, a2, b, c, d = (
        _pending(b"a", 2),
        _pending(b"a", 2),
        _pending(b"b", 2),
        _pending(b"c", 2, seq=7),
        _pending(b"d", 3),
    )
    queue = deque([a1, a2, b, c, d])
    assert take_group(queue, 6) == [a1, b]  # a2: the same client; c: another length; d: over 6 rows
    assert take_group(queue, 6) == [a2, d]
    assert take_group(queue, 6) == [c]
    alone = deque([_pending(b"a", 2, want=None), _pending(b"b", 2, want=None)])
    assert len(take_group(alone, 64)) == 1  # everything read: not known to be per row
    assert len(take_group(deque([_pending(b"a", 2), _pending(b"b", 2)]), 0)) == 1


def test_stacked_outputs_split_into_each_requests_rows() -> None:
    batches = [{"x": torch.randn(2, 3)}, {"x": torch.randn(1, 3)}]
    stacked = stack(batches)
    out = [{"logits": [stacked["x"] * 2], "hidden": {"$layers": 3, "at": [[2, stacked["x"] + 1]]}}]
    parts = split(out, [2, 1])
    for part, b in zip(parts, batches):
        assert torch.equal(part[0]["logits"][0], b["x"] * 2)
        assert part[0]["hidden"]["$layers"] == 3
        assert part[0]["hidden"]["at"][0][0] == 2
        assert torch.equal(part[0]["hidden"]["at"][0][1], b["x"] + 1)


class _TwoTeachers:
    """The part of a TeacherServer that forward() reads: two linear teachers over a 5-entry vocabulary."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.teachers = [torch.nn.Linear(4, 5), torch.nn.Linear(4, 5)]
        self.adaptors = [{"kind": "select", "keys": {"logits": {"from": "out", "path": []}}}] * 2
        self.flags: list[dict[str, Any]] = [{}, {}]
        self.autocast_dtype: torch.dtype | None = None
        self.state = type("State", (), {"torch_device": torch.device("cpu")})()


def test_topk_targets_are_the_mean_teachers_log_softmax_topk_in_float64() -> None:
    fake = _TwoTeachers()
    x = torch.randn(3, 2, 4)
    header = {
        "want": wanted_outputs([{"kind": "kd"}], topk=True),
        "dtype": "bfloat16",
        "topK": {"k": 2, "temperature": 2.0},
    }
    out = TeacherServer.forward(fake, {"input": x}, header)  # type: ignore[arg-type]
    assert set(out[0]) == {TOPK_KEY} and out[1] == {}  # no dense logits travel
    values, indices = out[0][TOPK_KEY]
    with torch.no_grad():
        mean = (fake.teachers[0](x).double() + fake.teachers[1](x).double()) / 2
    ref_values, ref_indices = torch.log_softmax(mean / 2.0, dim=-1).topk(2, dim=-1)
    assert values.dtype == torch.float32  # log-probabilities keep float32 whatever the dense dtype
    assert indices.dtype == torch.int32
    assert torch.equal(indices.long(), ref_indices)
    assert torch.allclose(values.double(), ref_values, atol=1e-6, rtol=0)


def test_topk_request_takes_the_kd_terms_temperature() -> None:
    spec = {"topK": 8}
    assert topk_request(spec, [{"kind": "kd", "temperature": 4}]) == {"k": 8, "temperature": 4.0}
    assert topk_request({"topK": None}, [{"kind": "kd", "temperature": 4}]) is None
    try:
        topk_request(spec, [{"kind": "match"}])
    except ValueError as exc:
        assert "teacherService.topK" in str(exc)
    else:
        raise AssertionError("a plan without KD must refuse topK")


def test_mixed_precision_runs_the_teachers_under_autocast() -> None:
    fake = _TwoTeachers()
    x = torch.randn(3, 2, 4)
    header = {"want": {"logits": "all"}, "dtype": "float32"}
    exact = TeacherServer.forward(fake, {"input": x}, header)  # type: ignore[arg-type]
    fake.autocast_dtype = torch.bfloat16
    autocast = TeacherServer.forward(fake, {"input": x}, header)  # type: ignore[arg-type]
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        expected = fake.teachers[0](x)
    assert expected.dtype == torch.bfloat16
    assert torch.equal(autocast[0]["logits"][0], expected.float())  # sent as the float32 asked for
    assert not torch.equal(autocast[0]["logits"][0], exact[0]["logits"][0])


def test_topk_from_teachers_without_logits_is_refused_naming_the_adaptor() -> None:
    fake = _TwoTeachers()
    fake.adaptors = [{"kind": "select", "keys": {"hidden": {"from": "out", "path": []}}}] * 2
    header = {"want": {}, "dtype": "float32", "topK": {"k": 2, "temperature": 1.0}}
    with pytest.raises(ValueError, match="topK: the teacher adaptor returns no 'logits'"):
        TeacherServer.forward(fake, {"input": torch.randn(2, 4)}, header)  # type: ignore[arg-type]
