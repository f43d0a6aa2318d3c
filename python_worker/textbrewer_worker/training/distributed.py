"""Data-parallel ranks under torchrun: the process group, DDP around the trainable modules (or FSDP2 around the
student with strategy "fsdp", see ..fsdp), `no_sync` on the micro-batches that do not step, loss values averaged
over the ranks, and checkpoints written by rank 0.

Outside a process group (a single worker) every function here is a no-op or defers to the single-worker code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..wire.ops import WorkerState, op
from ..wire.ops_types import DistBroadcastModelArgs, DistInfoArgs, DistInfoResult

BACKENDS = ("auto", "gloo", "nccl")
STRATEGIES = ("ddp", "fsdp")


@dataclass
class Strategy:
    """How this rank's training run spreads the student: "ddp" replicates it, "fsdp" shards it (set at launch)."""

    name: str = "ddp"


STRATEGY = Strategy()


@dataclass(frozen=True)
class RankEnv:
    """What torchrun tells each process about itself (torch.distributed.run's environment variables)."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int

    @staticmethod
    def read() -> RankEnv:
        missing = [k for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE") if k not in os.environ]
        if missing:
            raise ValueError(
                f"distributed: {', '.join(missing)} not set; the worker runs as a rank only under "
                "`python -m torch.distributed.run` (start it through Worker.start({ distributed }))"
            )
        return RankEnv(
            rank=int(os.environ["RANK"]),
            local_rank=int(os.environ["LOCAL_RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])),
        )


def rank_device(device: str, local_rank: int) -> str:
    """The device of one rank: on CUDA each local rank takes its own GPU (cuda:LOCAL_RANK)."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{local_rank}"
    if device == "auto":
        return "cpu"  # ranks on MPS have no collective backend
    return device


def join_group(backend: str, device: str, timeout_s: float, strategy: str) -> str:
    """Joins torchrun's process group (blocks until every rank has joined); returns this rank's device."""
    if strategy not in STRATEGIES:
        raise ValueError(f"distributed.strategy: '{strategy}' is not one of {', '.join(STRATEGIES)}")
    STRATEGY.name = strategy
    env = RankEnv.read()
    device = rank_device(device, env.local_rank)
    kind = torch.device(device).type
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: '{device}' was asked for but CUDA is not available here; use 'cpu' or 'auto'")
        torch.cuda.set_device(torch.device(device))
    if backend not in BACKENDS:
        raise ValueError(f"distributed.backend: '{backend}' is not one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "nccl" if kind == "cuda" else "gloo"
    if backend == "nccl" and kind != "cuda":
        raise ValueError(f"distributed.backend: 'nccl' needs CUDA devices but this rank runs on '{device}'; use 'gloo'")
    extra: dict[str, Any] = {"device_id": torch.device(device)} if backend == "nccl" else {}
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s), **extra)
    return device


def leave_group() -> None:
    """Ends this rank's part of the process group; a rank that exits without it can leave the others waiting."""
    if active():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


@op("dist_info")
def dist_info(state: WorkerState, args: DistInfoArgs) -> DistInfoResult:
    if not active():
        return {"rank": 0, "localRank": 0, "worldSize": 1, "backend": None}
    env = RankEnv.read()
    return {
        "rank": dist.get_rank(),
        "localRank": env.local_rank,
        "worldSize": dist.get_world_size(),
        "backend": dist.get_backend(),
    }


@op("dist_broadcast_model")
def dist_broadcast_model(state: WorkerState, args: DistBroadcastModelArgs) -> None:
    """Makes every rank's copy of a model equal to rank 0's (parameters and buffers)."""
    model = state.model(args)
    if not active():
        return
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


def plan_for_rank(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Rank 0 alone writes TensorBoard logs (of the values averaged over the ranks)."""
    if rank() == 0:
        return dict(plan)
    return {**plan, "logDir": None}


def wrap_trainables(student: nn.Module, projections: list[nn.Module | None], device: torch.device) -> dict[str, Any]:
    """DDP around the student and every projection: their forward goes through the wrappers (so DDP averages their
    gradients), the plain modules stay what checkpoints hold. DDP also copies rank 0's weights to every rank here.
    With strategy "fsdp" the student is sharded in place instead (before the optimizer is built: its parameters
    change); the projections, small, keep DDP.

    Returns {"student": wrapper, "projections": {id(module): wrapper}, "modules": [every wrapper]}, with strategy
    "fsdp" also "plain": the student's skeleton, filled at the end of the run (unshard_student); empty outside a
    process group."""
    if not active():
        return {}
    ids = [device.index] if device.type == "cuda" else None

    def wrap(module: nn.Module) -> DistributedDataParallel:
        # find_unused_parameters: an adaptor may leave part of the student out of the loss (a head, a pooler)
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    if STRATEGY.name == "fsdp":
        from .fsdp import is_sharded, shard

        if is_sharded(student):
            raise RuntimeError("the student is still sharded by an earlier run that did not end (train_end)")
        plain = shard(student)
        by_module = {id(p): wrap(p) for p in projections if p is not None}
        return {"student": student, "projections": by_module, "modules": [student, *by_module.values()], "plain": plain}
    wrapped_student = wrap(student)
    by_module = {id(p): wrap(p) for p in projections if p is not None}
    return {"student": wrapped_student, "projections": by_module, "modules": [wrapped_student, *by_module.values()]}


def unshard_student(state: WorkerState, session: Any) -> None:
    """At the end of an FSDP run: the student's handle names the plain module again, with the trained weights."""
    plain = session.ddp.get("plain")
    if plain is None:
        return
    from .fsdp import unshard

    trained = unshard(session.student, plain, session.device)
    for handle, model in list(state.models.items()):
        if model is session.student:
            state.models[handle] = trained


def through(wrappers: dict[str, Any], modules: list[nn.Module | None]) -> list[nn.Module | None]:
    """The forward modules of `modules`: their DDP wrappers in a process group, themselves outside one."""
    by_module = wrappers.get("projections", {})
    return [by_module.get(id(m), m) if m is not None else None for m in modules]


def sync_context(modules: list[nn.Module], optimizer_step: bool) -> contextlib.AbstractContextManager[Any]:
    """`no_sync` on every DDP module for a micro-batch that does not step: its gradients stay local and are averaged
    with the stepping micro-batch's."""
    if optimizer_step or not modules:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    for module in modules:
        if isinstance(module, DistributedDataParallel):
            stack.enter_context(module.no_sync())
        else:
            stack.enter_context(_fsdp_no_sync(module))
    return stack


@contextlib.contextmanager
def _fsdp_no_sync(module: nn.Module) -> Iterator[None]:
    """FSDP2's `no_sync`: gradients stay unreduced (and whole) until the stepping micro-batch."""
    module.set_requires_gradient_sync(False)  # pyright: ignore[reportCallIssue,reportAttributeAccessIssue]
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)  # pyright: ignore[reportCallIssue,reportAttributeAccessIssue]


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Each loss value averaged over the ranks: with equal shards, the value of the whole global batch."""
    if not active() or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    tensor /= dist.get_world_size()
    return dict(zip(keys, tensor.tolist()))


def mean_tensor_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """A detached tensor averaged over the ranks (a copy); the tensor itself outside a process group."""
    if not active():
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def agree_non_finite(bad: list[str], device: torch.device) -> list[str]:
    """The non-finite terms of any rank: DDP spreads one rank's NaN gradients to all, so all must skip or raise."""
    if not active():
        return bad
    flag = torch.tensor([1.0 if bad else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if flag.item() == 0:
        return bad
    gathered: list[list[str]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(gathered, bad)
    return sorted({name for names in gathered for name in names})


def rank_rng_file(index: int) -> str:
    return f"rng_state.rank{index}.pt"


def _raise_first_failure(error: BaseException | None, what: str) -> None:
    """Every rank learns whether any rank failed (so none waits in a later collective); each raises."""
    if not active():
        if error is not None:
            raise error
        return
    messages: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(messages, None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    for index, message in enumerate(messages):
        if message is not None:
            raise RuntimeError(f"{what} failed on rank {index}: {message}")


def save_checkpoint(session: Any, folder: str) -> list[str]:
    """Rank 0 writes the checkpoint as a single worker does (its RNG in rng_state.pt); every other rank adds only
    its RNG state, as rng_state.rank{N}.pt."""
    from .checkpoint import rng_state, save, torch_save

    if not active():
        return save(session, folder)
    whole: dict[str, Any] = {}
    if "plain" in session.ddp:
        from .fsdp import full_optimizer_state, full_state_dict

        # every rank takes part in gathering the shards; rank 0 writes them as a single worker's checkpoint
        whole = {
            "student_state": full_state_dict(session.student),
            "optimizer_state": full_optimizer_state(session.optimizer),
        }
    error: BaseException | None = None
    try:
        if dist.get_rank() == 0:
            save(session, folder, **whole)
        else:
            Path(folder).mkdir(parents=True, exist_ok=True)
            torch_save(rng_state(), Path(folder) / rank_rng_file(dist.get_rank()))
    except Exception as exc:  # noqa: BLE001  (reported to every rank, then raised)
        error = exc
    _raise_first_failure(error, "saving the checkpoint")
    return sorted(p.name for p in Path(folder).iterdir())


def load_checkpoint(session: Any, folder: str) -> None:
    """Every rank reads the shared files; ranks other than 0 then restore their own RNG state."""
    from .checkpoint import CheckpointReadError, load, set_rng_state

    if "plain" in session.ddp:
        raise CheckpointReadError(
            f"resumeFrom: '{folder}': resuming a run of distributed.strategy 'fsdp' is not supported (its "
            "checkpoints hold the full weights, loadable with from_pretrained or loadModel); resume with strategy "
            "'ddp', or start a new run from the checkpoint's model/ folder"
        )
    load(session, folder)
    if not active() or dist.get_rank() == 0:
        return
    file = Path(folder) / rank_rng_file(dist.get_rank())
    if not file.is_file():
        raise CheckpointReadError(
            f"resumeFrom: '{folder}' has no {file.name}: it was written by a run with fewer ranks than this one "
            f"({dist.get_world_size()}); resume with the nprocPerNode and nnodes of the run that wrote it"
        )
    set_rng_state(torch.load(file, weights_only=True))
