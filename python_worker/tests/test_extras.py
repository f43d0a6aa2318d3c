"""Extras of a lean environment: training imports and runs without them; a feature that needs one says how to add it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from textbrewer_worker import emd
from textbrewer_worker.models.errors import ModelSaveError
from textbrewer_worker.models.onnx_export import export_onnx

WORKER_ROOT = Path(__file__).resolve().parents[1]


def test_training_modules_import_without_pot() -> None:
    # sys.modules["ot"] = None makes `import ot` fail as in an environment without POT
    code = (
        "import sys\nsys.modules['ot'] = None\n"
        "import textbrewer_worker.wire.server, textbrewer_worker.training.session, textbrewer_worker.training.train_ops\nprint('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=WORKER_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_emd_without_pot_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ot", None)
    with pytest.raises(ImportError, match=r"setup --with emd.*pip install POT==0\.9\.6"):
        emd.transport_flow(np.ones(2) / 2, np.ones(3) / 3, np.ones((2, 3)))


def test_onnx_export_without_onnx_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(
        ModelSaveError, match=r"module 'onnx' is missing.*setup --with onnx.*pip install onnx==1\.23\.1"
    ):
        export_onnx(torch.nn.Linear(2, 2), str(tmp_path / "m.onnx"), sample={"input": torch.ones(1, 2)})
    assert list(tmp_path.iterdir()) == []
