"""ONNX export of a model through ``torch.onnx.export``, checked against PyTorch on a sample.

Uses the TorchScript-based exporter (``dynamo=False``), which needs only the ``onnx`` package; the check runs the
exported graph with ``onnxruntime`` on the sample and reports the largest absolute difference from PyTorch's output.
Both come with the ``onnx`` extra (python_worker/extras/onnx.lock).
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .errors import ModelSaveError, _short_repr

ONNX_EXTRA = "onnx==1.23.1 onnxruntime==1.30.0"
DEFAULT_OPSET = 17


class _Positional(torch.nn.Module):
    """Calls the model with keyword inputs in a fixed order and returns its first output (the logits of a head)."""

    def __init__(self, model: torch.nn.Module, names: list[str], output: str) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.output = output

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        out = self.model(**dict(zip(self.names, tensors)))
        if isinstance(out, Mapping):
            return out[self.output]
        return out[0] if isinstance(out, (tuple, list)) else out


def _require(module: str) -> Any:
    importlib.invalidate_caches()  # the extra may have been installed since the worker started
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ModelSaveError(
            f"exportOnnx: the Python module '{module}' is missing; the managed environment adds it with "
            f"`npx textbrewer setup --with onnx` (with TEXTBREWER_PYTHON: pip install {ONNX_EXTRA})"
        ) from err


@contextmanager
def _private_tmpdir() -> Iterator[None]:
    """onnxruntime leaves `.ses` and `mat-debug-<pid>.log` in the temp folder when it loads and runs a graph: give it a
    folder of its own (TMPDIR), removed afterwards."""
    scratch = tempfile.mkdtemp(prefix="textbrewer-ort-")
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = scratch
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
        shutil.rmtree(scratch, ignore_errors=True)


def _run_onnxruntime(file: Path, output: str, feeds: dict[str, Any]) -> Any:
    with _private_tmpdir():
        ort = _require("onnxruntime")
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        result = session.run([output], feeds)[0]
        del session
    return result


def default_sample(model: torch.nn.Module, batch: int = 2, length: int = 8) -> dict[str, torch.Tensor]:
    """Token ids, an attention mask (one padded position) and token type ids where the model takes them."""
    config = getattr(model, "config", None)
    vocab = int(getattr(config, "vocab_size", 100) or 100)
    ids = (torch.arange(batch * length, dtype=torch.int64).reshape(batch, length) * 7 + 3) % vocab
    mask = torch.ones(batch, length, dtype=torch.int64)
    mask[-1, -1] = 0
    sample = {"input_ids": ids, "attention_mask": mask}
    params = inspect.signature(model.forward).parameters
    if "token_type_ids" in params and getattr(config, "type_vocab_size", 0):
        sample["token_type_ids"] = torch.zeros(batch, length, dtype=torch.int64)
    return sample


def _output_name(model: torch.nn.Module, sample: dict[str, torch.Tensor]) -> tuple[str, torch.Tensor]:
    with torch.no_grad():
        out = model(**sample)
    if isinstance(out, Mapping):
        name = "logits" if "logits" in out else next(iter(out.keys()))
        return name, out[name]
    tensor = out[0] if isinstance(out, (tuple, list)) else out
    return "output", tensor


def _axes(names: list[str], sample: dict[str, torch.Tensor], output: str, rank: int, dynamic: Any) -> dict | None:
    if dynamic is False or dynamic is None:
        return None
    if isinstance(dynamic, Mapping):
        return {str(k): {int(a): str(n) for a, n in v.items()} for k, v in dynamic.items()}
    axes: dict[str, dict[int, str]] = {
        name: {0: "batch", 1: "sequence"} if sample[name].dim() >= 2 else {0: "batch"} for name in names
    }
    axes[output] = {0: "batch", 1: "sequence"} if rank >= 3 else {0: "batch"}
    return axes


def export_onnx(
    model: torch.nn.Module,
    path: str,
    sample: Mapping[str, torch.Tensor] | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic_axes: Any = True,
) -> dict[str, Any]:
    """Export ``model`` to ``path`` (written atomically) with the sample's keys as input names; run the file with
    onnxruntime on the sample and return ``{path, inputs, output, opset, bytes, maxAbsDiff}``."""
    if not isinstance(opset, int) or isinstance(opset, bool) or not 9 <= opset <= 20:
        raise ModelSaveError(f"opset: {_short_repr(opset)} is not an opset the exporter writes; use 9..20 (e.g. 17)")
    onnx_module = _require("onnx")
    with _private_tmpdir():
        _require("onnxruntime")  # both extras are there before anything is written
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    sample = {k: v.to(device) for k, v in (sample or default_sample(model)).items()}
    bad = [k for k, v in sample.items() if not isinstance(v, torch.Tensor)]
    if bad or not sample:
        raise ModelSaveError(f"sample: expected a record of tensors (e.g. input_ids, attention_mask), got {bad}")
    names = list(sample)
    was_training = model.training
    model.eval()
    try:
        output, expected = _output_name(model, sample)
        wrapper = _Positional(model, names, output).eval()
        target = Path(path)
        if target.is_dir():
            raise ModelSaveError(f"path: '{path}' is a folder; give a file path such as 'student.onnx'")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the TorchScript tracer's and the exporter's deprecation notes
                torch.onnx.export(
                    wrapper,
                    tuple(sample[n] for n in names),
                    str(tmp),
                    input_names=names,
                    output_names=[output],
                    dynamic_axes=_axes(names, sample, output, expected.dim(), dynamic_axes),
                    opset_version=opset,
                    dynamo=False,
                )
            onnx_module.checker.check_model(str(tmp))
            got = _run_onnxruntime(tmp, output, {n: sample[n].cpu().numpy() for n in names})
            diff = float((torch.from_numpy(got).double() - expected.detach().cpu().double()).abs().max())
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    finally:
        model.train(was_training)
    return {
        "path": str(target),
        "inputs": names,
        "output": output,
        "opset": opset,
        "bytes": target.stat().st_size,
        "maxAbsDiff": diff,
    }
