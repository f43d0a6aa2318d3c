"""The teacher service's pieces without sockets: what a plan reads, the selection and its restore, and how waiting
requests are grouped and their stacked outputs split."""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from textbrewer_worker.service.service_wire import pack, restore_outputs, select_outputs, unpack, wanted_outputs
from textbrewer_worker.service.teacher_service import Pending, split, stack, take_group


def test_wanted_outputs_reads_the_terms() -> None:
    terms = [
        {"kind": "kd"},
        {"kind": "match", "feature": "hidden", "layerT": 4},
        {"kind": "match", "feature": "hidden", "layerT": [4, -1]},
        {"kind": "match", "feature": "attention", "layerT": 2},
        {"kind": "hard_label"},
    ]
    assert wanted_outputs(terms) == {"logits": "all", "logits_mask": "all", "hidden": [4, -1], "attention": [2]}
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
