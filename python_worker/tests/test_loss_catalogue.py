"""The loss catalogue: @loss metadata, the generated losses.json, and user losses registered from TypeScript."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from textbrewer_worker.builtin_losses import BUILTIN_LOSSES
from textbrewer_worker.custom_losses import ensure_registered
from textbrewer_worker.loss_catalogue import CATALOGUE_PATH, render
from textbrewer_worker.losses import (
    KD_LOSSES,
    MATCH_LOSSES,
    get_loss,
    loss,
    loss_info,
    register_loss,
    unregister_loss,
)
from textbrewer_worker.training.objective import Objective


def test_losses_json_is_up_to_date() -> None:
    assert CATALOGUE_PATH.read_text(encoding="utf-8") == render(), (
        "losses.json is stale: run `python -m textbrewer_worker.loss_catalogue` in python_worker/"
    )


def test_builtin_catalogue_is_the_registries() -> None:
    names = {(i.kind, i.name) for i in BUILTIN_LOSSES}
    assert names == {("kd", n) for n in KD_LOSSES} | {("match", n) for n in MATCH_LOSSES}
    pairs = sorted(i.name for i in BUILTIN_LOSSES if i.layers == "pair")
    assert pairs == ["fsp", "gram", "mmd", "nst"]
    attention = sorted(i.name for i in BUILTIN_LOSSES if i.features == ("attention",))
    assert attention == ["attention_ce", "attention_ce_mean", "attention_mse", "attention_mse_sum"]
    assert loss_info("match", "pkd").mask is False and loss_info("match", "hidden_mse").mask is True
    assert all(i.layers is None and i.features == ("logits",) for i in BUILTIN_LOSSES if i.kind == "kd")


def objective(matches: list[dict[str, Any]]) -> Objective:
    specs = [{"kind": "match", "proj": None, "mmdMaskedDivisor": "hidden", **m} for m in matches]
    return Objective(specs, torch.device("cpu"), [])


def test_a_decorated_match_loss_is_usable_by_name_with_its_metadata() -> None:
    @loss("test_masked_l1", kind="match", layers="single", features=["hidden"])
    def masked_l1(feat_S: torch.Tensor, feat_T: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        m = torch.ones(feat_S.shape[:2], dtype=feat_S.dtype) if mask is None else mask.to(feat_S.dtype)
        return ((feat_S - feat_T).abs() * m.unsqueeze(-1)).sum() / (m.sum() * feat_S.shape[-1])

    try:
        info = loss_info("match", "test_masked_l1")
        assert (info.layers, info.features, info.mask) == ("single", ("hidden",), True)
        assert get_loss("match", "test_masked_l1") is masked_l1
        g = np.random.default_rng(0)
        s, t = g.normal(0, 1, (2, 3, 4)), g.normal(0, 1, (2, 3, 4))
        mask = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        expected = sum(abs(s[b, i] - t[b, i]).sum() for b in range(2) for i in range(3) if mask[b, i]) / (3 * 4)
        match = {"layerS": 0, "layerT": 0, "feature": "hidden", "loss": "test_masked_l1", "weight": 1.0}
        results_S = {"hidden": [torch.from_numpy(s)], "inputs_mask": torch.from_numpy(mask)}
        obj = objective([match])
        _, terms = obj.loss(obj.inputs(results_S, [{"hidden": [torch.from_numpy(t)]}], {}))
        assert math.isclose(float(terms["unweighted_hidden_test_masked_l1_0_0"]), expected, rel_tol=1e-12)
        refused = r"intermediateMatches\[0\]\.layerS: loss 'test_masked_l1' takes one layer"
        with pytest.raises(ValueError, match=refused):
            objective([{**match, "layerS": [0, 1], "layerT": [0, 1]}])
    finally:
        unregister_loss("match", "test_masked_l1")
    assert "test_masked_l1" not in MATCH_LOSSES


def test_register_loss_checks_name_metadata_and_signature() -> None:
    def kd(s: torch.Tensor, t: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return (s - t).pow(2).mean()

    def two_args(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (s - t).pow(2).mean()

    with pytest.raises(ValueError, match=r"must take \(logits_S, logits_T, temperature\)"):
        register_loss("kd", "test_two_args", two_args)
    with pytest.raises(ValueError, match=r"must take \(feat_S, feat_T, mask=None\)"):
        register_loss("match", "test_two_args", two_args)
    with pytest.raises(ValueError, match="layers must be 'single' or 'pair'"):
        register_loss("kd", "test_kd", kd, layers="pair")
    with pytest.raises(ValueError, match="features must be among hidden, attention"):
        register_loss("match", "test_match", lambda s, t, mask=None: s.sum(), features=["logits"])
    with pytest.raises(ValueError, match="a name is letters"):
        register_loss("kd", "no spaces", kd)
    assert "test_kd" not in KD_LOSSES and "test_two_args" not in KD_LOSSES


def write(tmp_path: Path, code: str) -> str:
    file = tmp_path / "user_losses.py"
    file.write_text(code, encoding="utf-8")
    return str(file)


def test_user_losses_from_registerLoss_plain_and_decorated(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "from textbrewer_worker.losses import loss\n"
        "def plain(s, t, mask=None):\n    return (s - t).abs().mean()\n"
        "@loss('test_pair_user', kind='match', layers='pair', features=['hidden'])\n"
        "def pair(s, t, mask=None):\n    return (s[0] - t[1]).abs().mean()\n",
    )
    try:
        ensure_registered([{"kind": "match", "name": "test_plain_user", "python": f"{file}:plain"}])
        assert loss_info("match", "test_plain_user").layers is None  # either form, as TypeScript accepts
        ensure_registered([{"kind": "match", "name": "test_pair_user", "python": f"{file}:pair"}])
        assert loss_info("match", "test_pair_user").layers == "pair"
        with pytest.raises(ValueError, match=r"is decorated as match loss 'test_pair_user'; register it with that"):
            ensure_registered([{"kind": "match", "name": "test_other_name", "python": f"{file}:pair"}])
        with pytest.raises(ValueError, match="'hidden_mse' is a built-in match loss"):
            ensure_registered([{"kind": "match", "name": "hidden_mse", "python": f"{file}:plain"}])
    finally:
        unregister_loss("match", "test_plain_user")
        unregister_loss("match", "test_pair_user")
