"""The rank side of a worker group: picking a rank's link, and the no-ops outside a process group."""

from __future__ import annotations

import json

import pytest
import torch

from textbrewer_worker.training import distributed
from textbrewer_worker.wire.rank_link import pick_rank_link


def test_each_local_rank_picks_its_own_endpoint_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = json.dumps(["ipc:///a/r0.ipc", "ipc:///a/r1.ipc"])
    tokens = json.dumps(["t" * 48, "u" * 48])
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert pick_rank_link(endpoints, tokens) == ("ipc:///a/r1.ipc", "u" * 48)


def test_a_local_rank_beyond_the_endpoints_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(ValueError, match="LOCAL_RANK 2: the launch has 2 endpoints"):
        pick_rank_link(json.dumps(["a", "b"]), json.dumps(["x", "y"]))


def test_outside_torchrun_the_rank_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match="RANK, LOCAL_RANK, WORLD_SIZE not set"):
        distributed.RankEnv.read()


def test_each_local_rank_takes_its_own_gpu_and_the_cpu_stays_the_cpu() -> None:
    assert distributed.rank_device("cpu", 3) == "cpu"
    if torch.cuda.is_available():
        assert distributed.rank_device("cuda", 1) == "cuda:1"
    else:
        assert distributed.rank_device("auto", 1) == "cpu"


def test_outside_a_process_group_nothing_changes() -> None:
    values = {"total": 1.5, "unweighted_kd_loss": 0.25}
    assert distributed.mean_over_ranks(values, torch.device("cpu")) is values
    assert distributed.agree_non_finite(["total"], torch.device("cpu")) == ["total"]
    assert distributed.wrap_trainables(torch.nn.Linear(2, 2), [], torch.device("cpu")) == {}
    plan = {"logDir": "runs/x"}
    assert distributed.plan_for_rank(plan) == plan


def test_an_unknown_strategy_is_named() -> None:
    with pytest.raises(ValueError, match=r"distributed\.strategy: 'zero3' is not one of ddp, fsdp"):
        distributed.join_group("gloo", "cpu", 10.0, "zero3")


def test_the_fsdp_skeleton_holds_no_weights_and_keeps_shared_parameters_shared() -> None:
    from textbrewer_worker.training.fsdp import shard_units, skeleton

    model = torch.nn.Sequential(
        torch.nn.Embedding(5, 4), torch.nn.ModuleList([torch.nn.Linear(4, 4)]), torch.nn.Linear(4, 5)
    )
    model[2].weight = torch.nn.Parameter(torch.randn(5, 4))
    model[0].weight = model[2].weight  # tied, as a language model's embeddings and head
    plain = skeleton(model)
    assert all(p.is_meta for p in plain.parameters())
    assert plain[0].weight is plain[2].weight
    assert not any(p.is_meta for p in model.parameters())
    assert shard_units(model) == [model[1][0]]
