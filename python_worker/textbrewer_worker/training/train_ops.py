"""Worker ops of a training run: configure, step, checkpoint save/load, end; and teacher-only forwards."""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from ..device import to_device
from ..sampled_cache_form import sampled_cache_targets
from ..teacher_features import encode_features, select_features
from ..wire.ops import WorkerState, call_model, op, refuse_sharded
from ..wire.ops_types import (
    ModelFingerprintArgs,
    TeacherLogitsArgs,
    TrainConfigureArgs,
    TrainConfigureResult,
    TrainEndArgs,
    TrainLoadArgs,
    TrainPreflightArgs,
    TrainSaveArgs,
    TrainStepArgs,
)
from . import distributed
from .adaptor import apply_adaptor
from .objective import post_adaptor, target_logits_of, topk_targets
from .preflight import preflight
from .session import TrainSession, configure, output_flags, step

IDLE_MARK_KEY = "train_idle_mark"
SESSION_KEY = "train_session"


def session_of(state: WorkerState) -> TrainSession:
    session = state.extensions.get(SESSION_KEY)
    if session is None:
        raise RuntimeError("no training run is configured in this worker; call train_configure first")
    return session


@op("train_configure")
def train_configure(state: WorkerState, args: TrainConfigureArgs) -> TrainConfigureResult:
    end(state)
    session = configure(state, distributed.plan_for_rank(args["plan"]))
    state.extensions[SESSION_KEY] = session
    state.extensions[IDLE_MARK_KEY] = state.idle_seconds
    return {
        "projectionParameters": sum(
            p.numel() for proj in session.objective.modules() if proj is not None for p in proj.parameters()
        ),
        "parameterGroups": len(session.optimizer.param_groups),
        "warnings": session.warnings,
    }


@op("train_step")
def train_step(state: WorkerState, args: TrainStepArgs) -> dict[str, Any]:
    session = session_of(state)
    with distributed.sync_context(session.ddp.get("modules", []), args["optimizerStep"]):
        reply = step(session, args)
    if args["optimizerStep"]:
        # time this worker waited for requests since the previous optimizer step: ~0 when the client keeps up
        mark = state.extensions.get(IDLE_MARK_KEY, state.idle_seconds)
        reply["workerIdleMs"] = (state.idle_seconds - mark) * 1000.0
        state.extensions[IDLE_MARK_KEY] = state.idle_seconds
    return reply


@op("train_preflight")
def train_preflight(state: WorkerState, args: TrainPreflightArgs) -> dict[str, Any]:
    return preflight(session_of(state), args)


@op("train_save")
def train_save(state: WorkerState, args: TrainSaveArgs) -> dict[str, Any]:
    return {"files": distributed.save_checkpoint(session_of(state), args["dir"])}


@op("train_load")
def train_load(state: WorkerState, args: TrainLoadArgs) -> None:
    try:
        distributed.load_checkpoint(session_of(state), args["dir"])
    except Exception:
        if distributed.STRATEGY.name == "fsdp":
            end(state)  # the run stops here without train_end: the student must be whole again
        raise


@op("train_end")
def train_end(state: WorkerState, args: TrainEndArgs) -> None:
    end(state)


def end(state: WorkerState) -> None:
    session = state.extensions.pop(SESSION_KEY, None)
    if session is not None and session.writer is not None:
        session.writer.close()
    if session is not None:
        distributed.unshard_student(state, session)
    if session is not None and session.teacher_link is not None:
        session.teacher_link.close()


@op("teacher_logits")
def teacher_logits(state: WorkerState, args: TeacherLogitsArgs) -> dict[str, Any]:
    """Teacher-only forward without gradients: the logits the adaptor selects (averaged over several teachers), and
    with `features` the first teacher's features the matches read, in their storage form."""
    teachers = [state.model({"model": h}) for h in args["teachers"]]
    specs = args["adaptors"]
    selection = args["features"]
    batch = to_device(args["batch"], state.torch_device)
    if isinstance(batch, dict) and set(batch) == {"teacher", "student"}:
        batch = batch["teacher"]
    per_teacher = []
    reply: dict[str, Any] = {}
    with torch.inference_mode():
        for teacher, spec in zip(teachers, specs):
            teacher.eval()
            out = call_model(teacher, batch, {**args["forwardArgs"], **output_flags(teacher, spec)})
            results = post_adaptor(apply_adaptor(spec, batch, out))
            if selection is not None and "features" not in reply:
                reply["features"] = encode_features(select_features(results, selection["items"]), selection["dtype"])
            if "logits" not in results:
                if selection is not None:
                    continue
                raise KeyError("logits: the teacher adaptor returns no 'logits' to cache")
            per_teacher.append(results["logits"])
    if not per_teacher:
        return {**reply, "logits": []}
    logits = target_logits_of([{"logits": l} for l in per_teacher]) or []
    top_k, samples = args["topK"], args["samples"]
    if samples:
        return {"logits": sampled_cache_targets(logits, samples["n"], float(args["temperature"]), samples["seed"])}
    if top_k:
        return {**reply, "logits": topk_targets(logits, top_k, float(args["temperature"]))}
    return {**reply, "logits": logits}


@op("model_fingerprint")
def model_fingerprint(state: WorkerState, args: ModelFingerprintArgs) -> str:
    """sha256 over the model's state dict (names, dtypes, shapes, bytes): one weight changed, another hash."""
    digest = hashlib.sha256()
    for name, tensor in refuse_sharded(state.model(args), "model_fingerprint").state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return digest.hexdigest()
