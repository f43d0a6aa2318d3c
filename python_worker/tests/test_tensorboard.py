"""TensorBoard scalars of a training run: read back from the event files the worker writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from op_call import call_op
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from textbrewer_worker.training import train_ops  # noqa: F401  (registers the ops)
from textbrewer_worker.wire.ops import WorkerState

LOSSES_ADAPTOR = {"kind": "select", "keys": {"losses": {"from": "out", "path": ["loss"]}}}


class TinyRegressor(nn.Module):
    """A linear model with a bias, whose forward returns its mean squared error as `loss`."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": ((self.linear(x).squeeze(-1) - y) ** 2).mean()}


def run(log_dir: Path, steps: int, **plan: Any) -> dict[str, list[tuple[int, float]]]:
    """Trains TinyRegressor for `steps` optimizer steps through the worker's ops; returns each scalar's events."""
    state = WorkerState(device="cpu")
    handle = state.add_model(TinyRegressor())
    call_op(
        state,
        "train_configure",
        {
            "plan": {
                "terms": [{"kind": "supervised"}],
                "customLosses": [],
                "student": handle,
                "adaptorS": LOSSES_ADAPTOR,
                "optimizer": {"type": "SGD", "lr": 0.1, "groups": [{"pattern": "bias", "lr": 0.01}]},
                "scheduler": {"type": "linear", "warmupSteps": 0, "totalSteps": steps, "minLrRatio": 0},
                "logDir": str(log_dir),
                **plan,
            }
        },
    )
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        batch = {"x": torch.randn(8, 4, generator=generator), "y": torch.randn(8, generator=generator)}
        call_op(state, "train_step", {"batch": batch, "optimizerStep": True, "report": True})
    call_op(state, "train_end", {})
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_learning_rate_of_each_group_and_grad_norm(tmp_path: Path) -> None:
    scalars = run(tmp_path / "tb", steps=4, maxGradNorm=1e6)
    assert sorted(scalars) == [
        "scalar/total_loss",
        "train/grad_norm",
        "train/lr",
        "train/lr_group1",
    ]
    # the rate after each step's scheduler update: the linear decay from 0.1 (and 0.01 for the bias group) to 0
    assert [step for step, _ in scalars["train/lr"]] == [0, 1, 2, 3]
    assert [v for _, v in scalars["train/lr"]] == pytest.approx([0.075, 0.05, 0.025, 0.0])
    assert [v for _, v in scalars["train/lr_group1"]] == pytest.approx([0.0075, 0.005, 0.0025, 0.0])
    norms = [v for _, v in scalars["train/grad_norm"]]
    assert len(norms) == 4 and all(v > 0 for v in norms)


def test_grad_norm_needs_clipping(tmp_path: Path) -> None:
    scalars = run(tmp_path / "tb", steps=2)
    assert "train/grad_norm" not in scalars
    assert len(scalars["train/lr"]) == 2


def test_skipped_steps_are_counted(tmp_path: Path) -> None:
    # lr 1e30: the first step makes the weights ~1e30, so every later loss overflows float32 and its step is skipped
    plan = {"optimizer": {"type": "SGD", "lr": 1e30}, "scheduler": None, "onNonFinite": "skip"}
    scalars = run(tmp_path / "tb", steps=4, **plan)
    assert [v for _, v in scalars["train/skipped_steps"]] == [0, 1, 2, 3]
    assert "train/loss_scale" not in scalars  # fp16 only


def test_fp16_loss_scale_and_its_skipped_steps(tmp_path: Path) -> None:
    scalars = run(tmp_path / "tb", steps=3, mixedPrecision="fp16")
    scales = [v for _, v in scalars["train/loss_scale"]]
    assert len(scales) == 3
    # GradScaler skips a step exactly when it lowers the scale (from its initial 2**16)
    before = [2.0**16, *scales[:-1]]
    lowered = [after < b for b, after in zip(before, scales)]
    running = [float(sum(lowered[: i + 1])) for i in range(3)]
    assert [v for _, v in scalars["train/skipped_steps"]] == running
