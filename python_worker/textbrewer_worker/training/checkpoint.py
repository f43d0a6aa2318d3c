"""Training checkpoints: student weights, optimizer, LR schedule, projections, AMP scaler and RNG states.

The student's files go into the checkpoint's ``model/`` folder (a Hugging Face folder that loads as is); the training
state sits beside it. Checkpoints written before that layout (weights at the top) still resume.

The TS side creates a temporary folder, asks the worker to fill it, adds trainer_state.json and renames it
into place, so a crash never leaves a half-written `gs{step}` behind.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from safetensors.torch import load_model as load_safetensors_into

from ..file_errors import is_pickle_refusal, read_failure, root_cause, torch_archive_problem
from ..models import write_model_files
from .session import TrainSession

STUDENT_WEIGHTS = "model.safetensors"
STUDENT_FOLDER = "model"


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]) + [random.getstate()[2] or -1],
        "python_version": random.getstate()[0],
    }
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # legacy=True gives MT19937's (name, keys, pos, ...) tuple
    state["numpy"] = {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": np_state[2]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    values = state["python"]
    gauss = values[-1]
    random.setstate((state["python_version"], tuple(values[:-1]), None if gauss == -1 else gauss))
    np.random.set_state(("MT19937", state["numpy"]["keys"].numpy().astype(np.uint32), state["numpy"]["pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _WriteRecorder:
    """A file wrapper that keeps the OSError of a failed write: torch.save reports it only as
    "enforce fail ... unexpected pos", without the cause (e.g. no space left on device)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.file.flush()


def torch_save(obj: Any, path: Path) -> None:
    """torch.save that fails with the OSError (errno, path) of the write that failed."""
    try:
        with open(path, "wb") as file:
            recorder = _WriteRecorder(file)
            try:
                # torch.save needs only write and flush of a file object; its FileLike type names IO[bytes]
                torch.save(obj, recorder)  # pyright: ignore[reportArgumentType]
            except RuntimeError as exc:
                if recorder.error is None:
                    raise
                raise recorder.error from exc
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def save(
    session: TrainSession,
    folder: str,
    student_state: dict[str, torch.Tensor] | None = None,
    optimizer_state: dict[str, Any] | None = None,
) -> list[str]:
    """`student_state` and `optimizer_state`, when given, are written instead of the session's own (FSDP gathers
    them whole from the ranks' shards)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / STUDENT_FOLDER).mkdir(exist_ok=True)
    write_model_files(session.student, out / STUDENT_FOLDER, student_state)
    torch_save(optimizer_state or session.optimizer.state_dict(), out / "optimizer.pt")
    if session.scheduler is not None:
        torch_save(session.scheduler.state_dict(), out / "scheduler.pt")
    if session.scaler is not None:
        torch_save(session.scaler.state_dict(), out / "scaler.pt")
    # the objective's terms own these modules (match and EMD projections); keys are "{slot}.{name}", slots
    # numbered across the terms in plan order
    projections = {
        f"{i}.{name}": tensor.detach().contiguous().cpu()
        for i, proj in enumerate(session.objective.modules())
        if proj is not None
        for name, tensor in proj.state_dict().items()
    }
    if projections:
        save_file(projections, str(out / "projections.safetensors"))
    torch_save(rng_state(), out / "rng_state.pt")
    return sorted(p.name for p in out.iterdir())


T = TypeVar("T")


class CheckpointReadError(ValueError):
    """A checkpoint file is missing, truncated, damaged or does not fit the run; the message names the file."""


def _read(file: Path, restore: Callable[[], T]) -> T:
    """Runs ``restore`` (read ``file`` and apply it); any failure becomes one line that names the file."""
    # a truncated torch.save archive can fail inside torch with a bare "Invalid argument": look at it first
    problem = torch_archive_problem(file) if file.suffix == ".pt" and file.is_file() else None
    if problem is not None:
        raise CheckpointReadError(f"resumeFrom: '{file}' {problem}; resume from another gs{{step}} checkpoint")
    try:
        return restore()
    except Exception as err:
        inner = root_cause(err)
        if is_pickle_refusal(inner):
            hint = "; checkpoints written by train() hold tensors only, so the file was replaced"
        elif isinstance(inner, (ValueError, KeyError)) and not isinstance(inner, pickle.UnpicklingError):
            hint = "; it does not fit this run (another model, optimizer or parameter groups?)"
        else:
            hint = ""
        raise CheckpointReadError(
            f"resumeFrom: {read_failure(file, err)}{hint}; resume from another gs{{step}} checkpoint"
        ) from err


def student_weights(folder: Path) -> Path | None:
    """The student's weights in a checkpoint: ``model/model.safetensors``, or at the top in the earlier layout."""
    for weights in (folder / STUDENT_FOLDER / STUDENT_WEIGHTS, folder / STUDENT_WEIGHTS):
        if weights.exists():
            return weights
    return None


def load(session: TrainSession, folder: str) -> None:
    src = Path(folder)
    weights = student_weights(src)
    if weights is None:
        raise FileNotFoundError(
            f"resumeFrom: '{folder}' has no {STUDENT_FOLDER}/{STUDENT_WEIGHTS}; is it a gs{{step}} checkpoint?"
        )
    missing, unexpected = _read(weights, lambda: load_safetensors_into(session.student, str(weights), strict=False))
    if unexpected or any(not _is_tied(session.student, key) for key in missing):
        raise ValueError(
            f"resumeFrom: the checkpoint does not fit the student (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )

    def torch_file(name: str, **kwargs: Any) -> Any:
        return torch.load(src / name, weights_only=True, **kwargs)

    _read(
        src / "optimizer.pt",
        lambda: session.optimizer.load_state_dict(torch_file("optimizer.pt", map_location=session.device)),
    )
    if session.scheduler is not None and (src / "scheduler.pt").exists():
        _read(src / "scheduler.pt", lambda: session.scheduler.load_state_dict(torch_file("scheduler.pt")))
    if session.scaler is not None and (src / "scaler.pt").exists():
        _read(src / "scaler.pt", lambda: session.scaler.load_state_dict(torch_file("scaler.pt")))
    projections_file = src / "projections.safetensors"
    if projections_file.exists():
        tensors = _read(projections_file, lambda: load_file(str(projections_file), device=str(session.device)))
        for i, proj in enumerate(session.objective.modules()):
            if proj is not None:
                prefix = f"{i}."
                part = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                _read(projections_file, lambda proj=proj, part=part: proj.load_state_dict(part))
    _read(src / "rng_state.pt", lambda: set_rng_state(torch_file("rng_state.pt")))


def _is_tied(model: torch.nn.Module, key: str) -> bool:
    """A key save_pretrained dropped because its tensor is shared with another one that was saved."""
    params = dict(model.named_parameters(remove_duplicate=False))
    target = params.get(key)
    if target is None:
        return False
    return any(p is target and name != key for name, p in params.items())
