"""One training run in the worker: models, adaptors, objective, optimizer, schedule, AMP. The TS loop drives it."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..batch_check import check_batch
from ..device import to_device
from ..lm_ops import on_policy_batch
from ..sampled_cache_form import sampled_cache_targets
from ..service.teacher_client import TeacherLink, open_link
from ..teacher_features import cached_results, encode_features, select_features
from ..terms import TermInputs
from ..terms.causal_lm_kd import CausalLmKdTerm
from ..terms.kd import KdTerm
from ..vocab_align import check_run_vocabularies, run_tokenizers
from ..wire.ops import WorkerState, call_model, ensure_eager_attention
from ..wire.ops_types import TrainStepArgs
from . import distributed
from .adaptor import apply_adaptor, needs_outputs
from .objective import Objective, post_adaptor, topk_targets
from .optim import build_optimizer, build_scheduler, parameter_groups

DEFAULT_TASK = "_"
NON_FINITE_ACTIONS = ("raise", "skip")


class NonFiniteLossError(FloatingPointError):
    """A loss term was NaN or ±Inf at an optimizer step (fp32/bf16); the step did not update the weights."""

    def __init__(self, terms: list[str]) -> None:
        super().__init__(f"non-finite loss in {', '.join(terms)}")
        self.terms = terms


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def output_flags(model: nn.Module, spec: dict[str, Any]) -> dict[str, bool]:
    """Asks an HF model for hidden states / attentions only when the adaptor reads them."""
    if getattr(model, "config", None) is None:
        return {}
    wanted = needs_outputs(spec)
    flags: dict[str, bool] = {}
    if "hidden_states" in wanted:
        flags["output_hidden_states"] = True
    if "attentions" in wanted:
        flags["output_attentions"] = True
        ensure_eager_attention(model)
    return flags


def pop_teacher_outputs(batch: Any) -> tuple[Any, Any]:
    """A batch may carry precomputed `teacherOutputs` that stand in for the teacher's forward."""
    if isinstance(batch, dict) and "teacherOutputs" in batch:
        rest = {k: v for k, v in batch.items() if k != "teacherOutputs"}
        return rest, batch["teacherOutputs"]
    return batch, None


def split_batch(batch: Any) -> tuple[Any, Any]:
    """`{teacher, student}` sends each half to its own model (different tokenizers); otherwise both share it."""
    if isinstance(batch, dict) and set(batch) == {"teacher", "student"}:
        return batch["teacher"], batch["student"]
    return batch, batch


def amp_settings(mode: str, device: torch.device, warnings: list[str]) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype, use a GradScaler). A dtype the device cannot autocast to falls back to float32 with a warning."""
    if mode == "no":
        return None, False
    if mode not in ("bf16", "fp16"):
        raise ValueError(f"mixedPrecision: '{mode}' is not one of no, fp16, bf16")
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    try:
        with torch.autocast(device_type=device.type, dtype=dtype):
            probe = torch.nn.functional.linear(torch.ones(2, 2, device=device), torch.ones(2, 2, device=device))
        if probe.dtype != dtype:
            raise RuntimeError(f"autocast produced {probe.dtype}")
        if mode == "fp16":
            torch.amp.grad_scaler.GradScaler(device.type)
    except (RuntimeError, ValueError, AssertionError) as exc:
        warnings.append(f"mixedPrecision: '{mode}' is not available on {device} ({exc}); training in float32")
        return None, False
    return dtype, mode == "fp16"


@dataclass
class TrainSession:
    plan: dict[str, Any]
    device: torch.device
    student: nn.Module
    teachers: dict[str, list[nn.Module]]
    adaptor_S: dict[str, dict[str, Any]]
    adaptor_T: dict[str, list[dict[str, Any]]]
    objective: Objective
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    autocast_dtype: torch.dtype | None
    writer: Any = None
    forward_student: Any = None
    warnings: list[str] = field(default_factory=list)
    forward_count: int = 0
    flags_S: dict[str, dict[str, bool]] = field(default_factory=dict)
    flags_T: dict[str, list[dict[str, bool]]] = field(default_factory=dict)
    on_non_finite: str = "raise"
    # per micro-batch of the current accumulation group: its detached total and terms, checked at the optimizer step
    finite_checks: list[dict[str, Any]] = field(default_factory=list)
    # set once a step raised NonFiniteLossError: the steps already sent after it must not update the weights
    halted: str | None = None
    # optimizer steps skipped so far (fp16 overflow, or onNonFinite "skip"), for TensorBoard
    skipped_steps: int = 0
    # in a process group: the DDP wrappers the forwards go through (distributed.wrap_trainables)
    ddp: dict[str, Any] = field(default_factory=dict)
    # the teacher service the teachers' outputs come from (plan.teacherService), instead of teachers in this worker
    teacher_link: TeacherLink | None = None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


def keyed(value: Any, tasks: list[str] | None) -> dict[str, Any]:
    return value if tasks else {DEFAULT_TASK: value}


def configure(state: WorkerState, plan: dict[str, Any]) -> TrainSession:
    device = state.torch_device
    if plan["seed"] is not None:
        seed_everything(int(plan["seed"]))
    tasks: list[str] | None = plan.get("tasks")
    student = state.model({"model": plan["student"]})
    teachers = {t: [state.model({"model": h}) for h in hs] for t, hs in keyed(plan["teachers"], tasks).items()}
    adaptor_S = keyed(plan["adaptorS"], tasks)
    adaptor_T = keyed(plan["adaptorT"], tasks)
    served = plan["teacherService"]
    for task, models in teachers.items():
        if len(adaptor_T.get(task, [])) != (served["teachers"] if served is not None else len(models)):
            raise ValueError(
                f"adaptorT: {len(models)} teacher(s) for task '{task}' but {len(adaptor_T.get(task, []))} adaptor(s)"
            )
    # the terms create their parameters (projections) here, in plan order, after the seed
    objective = Objective(plan["terms"], device, plan["customLosses"])
    # before the optimizer: FSDP replaces the student's parameters with their shards
    ddp = distributed.wrap_trainables(student, objective.modules(), device)
    for t in objective.terms:
        if isinstance(t, CausalLmKdTerm):
            t.accumulation_steps = int(plan["gradientAccumulationSteps"])
    opt_spec = plan["optimizer"]
    groups = parameter_groups(student, opt_spec["groups"]) + objective.param_groups()
    optimizer = build_optimizer(opt_spec, groups)
    scheduler = build_scheduler(plan["scheduler"], optimizer)
    warnings: list[str] = []
    autocast_dtype, use_scaler = amp_settings(plan["mixedPrecision"], device, warnings)
    every_teacher = [m for models in teachers.values() for m in models]
    for t in objective.terms:
        # the terms that compare teacher and student logits entry by entry: their vocabularies must agree
        if isinstance(t, KdTerm | CausalLmKdTerm):
            loss = t.loss_type if isinstance(t, KdTerm) else t.loss_kind
            tokenizers = run_tokenizers(state.extensions, t.spec.get("tokenizers"))
            t.vocab_prefix, lines = check_run_vocabularies(loss, student, every_teacher, tokenizers)
            warnings.extend(line for line in lines if line not in warnings)
    if device.type == "cuda":
        # TF32 matmuls on Ampere and later: float32 range, ~10-bit mantissa inside the tensor cores
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    scaler = torch.amp.grad_scaler.GradScaler(device.type) if use_scaler else None
    writer = None
    if plan["logDir"]:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=plan["logDir"])
    for models in teachers.values():
        for teacher in models:
            teacher.eval()
    student.train()
    on_non_finite = plan["onNonFinite"]
    if on_non_finite not in NON_FINITE_ACTIONS:
        raise ValueError(f"onNonFinite: '{on_non_finite}' is not one of {', '.join(NON_FINITE_ACTIONS)}")
    session = TrainSession(
        plan=plan,
        device=device,
        student=student,
        teachers=teachers,
        adaptor_S=adaptor_S,
        adaptor_T=adaptor_T,
        objective=objective,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        autocast_dtype=autocast_dtype,
        writer=writer,
        warnings=warnings,
        on_non_finite=on_non_finite,
        ddp=ddp,
    )
    for t in objective.terms:
        t.wrappers = session.ddp.get("projections", {})
    # torch.compile wraps the forward only; the plain module is what gets saved and restored
    forward = session.ddp.get("student", student)
    session.forward_student = torch.compile(forward) if plan["compile"] else forward
    session.flags_S = {t: output_flags(student, spec) for t, spec in adaptor_S.items()}
    session.flags_T = {t: [output_flags(m, s) for m, s in zip(teachers[t], adaptor_T[t])] for t in teachers}
    # last: the link registers a hook on the request loop, which train_end (or the next configure) removes
    session.teacher_link = open_link(state, plan)
    return session


def teacher_results(
    session: TrainSession, task: str, batch_T: Any, extra: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The teachers' adaptor outputs for the batch, and the top-k KD targets when a teacher service sends them."""
    if session.teacher_link is not None:
        results = session.teacher_link.results(batch_T)
        return results, session.teacher_link.sparse_targets(results)
    results = []
    with torch.no_grad():
        for teacher, spec, flags in zip(session.teachers[task], session.adaptor_T[task], session.flags_T[task]):
            out = call_model(teacher, batch_T, {**extra, **flags})
            results.append(post_adaptor(apply_adaptor(spec, batch_T, out)))
    return results, None


def step(session: TrainSession, args: TrainStepArgs) -> dict[str, Any]:
    if session.halted is not None:
        raise RuntimeError(f"training stopped after an earlier step: {session.halted}")
    plan = session.plan
    task = args["task"] or DEFAULT_TASK
    if task not in session.adaptor_S:
        raise KeyError(f"task: '{task}' is not one of {', '.join(sorted(session.adaptor_S))}")
    check_batch(args["batch"])
    batch, teacher_outputs = pop_teacher_outputs(to_device(args["batch"], session.device))
    if plan.get("onPolicy") is not None:
        # the student samples in the same worker, from the run's RNG (checkpointed): resume stays exact
        batch = on_policy_batch(plan["onPolicy"], session.student, batch)
    batch_T, batch_S = split_batch(batch)
    extra = plan["forwardArgs"]
    cached = args.get("teacherLogits")
    if cached is not None:
        cached = to_device(cached if isinstance(cached, list) else [cached], session.device)
    topk = args.get("teacherTopK")
    if topk is not None:
        topk = {**topk, "targets": to_device(topk["targets"], session.device)}
    if args["zeroGrad"]:
        session.optimizer.zero_grad(set_to_none=True)
    with session.autocast():
        out_S = call_model(session.forward_student, batch_S, {**extra, **session.flags_S[task]})
        results_S = post_adaptor(apply_adaptor(session.adaptor_S[task], batch_S, out_S))
        features = args.get("teacherFeatures")
        if features is not None:
            results_T = [cached_results(features, session.device)]
        elif cached is not None or topk is not None or not session.adaptor_T[task]:
            results_T = []
        elif teacher_outputs is not None:
            results_T = [post_adaptor(apply_adaptor(session.adaptor_T[task][0], batch_T, teacher_outputs))]
        else:
            results_T, topk = teacher_results(session, task, batch_T, extra)
        inputs = session.objective.inputs(results_S, results_T, args, cached, topk)
        total, terms = session.objective.loss(inputs)
    loss = total / int(plan["gradientAccumulationSteps"])
    if session.scaler is None:
        # fp16 leaves non-finite values to GradScaler, which skips such steps and lowers its scale
        session.finite_checks.append(detached_terms(total, terms))
    if session.scaler is not None:
        session.scaler.scale(loss).backward()
    else:
        loss.backward()
    reply: dict[str, Any] = {}
    if args["optimizerStep"]:
        reply.update(checked_optimizer_step(session, args["report"]))
        if session.writer is not None:
            log_optimizer_scalars(session, reply)
    if args["report"]:
        values = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in terms.items()}
        values["total"] = float(total.detach())
        values = distributed.mean_over_ranks(values, session.device)
        # non-finite numbers stay out of the reply: their names are listed instead
        non_finite = {k for k, v in values.items() if not math.isfinite(v)} | set(reply.get("nonFinite", []))
        if non_finite:
            reply["nonFinite"] = sorted(non_finite)
        if "total" not in non_finite:
            reply["total"] = values["total"]
        reply["terms"] = {k: v for k, v in values.items() if k != "total" and k not in non_finite}
        reply["lr"] = [float(g["lr"]) for g in session.optimizer.param_groups]
        if session.writer is not None and "total" in reply:
            log_scalars(session, reply)
    logits_term = session.objective.logits_term
    temperature = logits_term.temperature if logits_term is not None else None
    if args["returnTeacherLogits"] and topk is not None:
        # top-k targets from a teacher service, written through to a cache of the same topK (checked by the script)
        if not args["returnTopK"] or args["returnSamples"]:
            raise ValueError("teacherCache: the teacher service sends top-k targets; open the cache with the same topK")
        reply["teacherLogits"] = [t.detach() for t in topk["targets"]]
    elif args["returnTeacherLogits"] and inputs.target_logits is not None and temperature is not None:
        k, samples = args["returnTopK"], args["returnSamples"]
        targets = [t.detach() for t in inputs.target_logits]
        if samples:
            reply["teacherLogits"] = sampled_cache_targets(targets, samples["n"], temperature, samples["seed"])
        else:
            reply["teacherLogits"] = topk_targets(targets, int(k), temperature) if k else targets
    selection = args["returnTeacherFeatures"]
    if selection is not None and results_T:
        reply.update(teacher_features_reply(inputs, selection))
    session.forward_count += 1
    return reply


def teacher_features_reply(inputs: TermInputs, selection: Mapping[str, Any]) -> dict[str, Any]:
    """The step's teacher features in their storage form, with the teacher's dense logits when it has any (a cache
    record holds both, so a hit can stand in for the whole forward)."""
    reply: dict[str, Any] = {
        "teacherFeatures": encode_features(select_features(inputs.first_T, selection["items"]), selection["dtype"])
    }
    if inputs.target_logits is not None:
        reply["teacherLogits"] = [t.detach() for t in inputs.target_logits]
    return reply


def detached_terms(total: torch.Tensor, terms: dict[str, Any]) -> dict[str, Any]:
    """A micro-batch's total and terms, kept (without their graph) until its optimizer step checks them."""
    return {"total": total.detach(), **{k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in terms.items()}}


def non_finite_terms(session: TrainSession) -> list[str]:
    """The terms that were NaN/Inf in a micro-batch of this accumulation group ([] when all were finite).

    A non-finite term makes the total non-finite (a weight of 0 too: 0 * inf is NaN), so the check reads the
    totals only, at the optimizer step (a host sync on a GPU, where the step's work is queued by then). The terms
    are read when it fails."""
    checks, session.finite_checks = session.finite_checks, []
    if all(math.isfinite(float(c["total"])) for c in checks):
        return []
    bad = {k for c in checks for k, v in c.items() if not math.isfinite(float(v))}
    terms = sorted(bad - {"total"})
    return terms or ["total"]


def checked_optimizer_step(session: TrainSession, report: bool) -> dict[str, Any]:
    """The optimizer step, unless a loss of the group was not finite: then raise, or skip it (onNonFinite)."""
    bad = distributed.agree_non_finite(non_finite_terms(session), session.device)
    if bad:
        session.optimizer.zero_grad(set_to_none=True)
        if session.on_non_finite == "raise":
            error = NonFiniteLossError(bad)
            session.halted = str(error)
            raise error
        if session.scheduler is not None:
            session.scheduler.step()  # the step still counts, as GradScaler's skipped steps do
        return {"skipped": "non-finite", "nonFinite": bad}
    grad_norm, scale, skipped = optimizer_step(session)
    reply: dict[str, Any] = {}
    if report and grad_norm is not None and math.isfinite(float(grad_norm)):
        reply["gradNorm"] = float(grad_norm)
    if scale is not None:
        reply["lossScale"] = scale
    if skipped:
        reply["skipped"] = "overflow"
    return reply


def optimizer_step(session: TrainSession) -> tuple[torch.Tensor | None, float | None, bool]:
    """(gradient norm before clipping, fp16 loss scale after the step, whether GradScaler skipped the update)."""
    plan = session.plan
    max_norm = float(plan["maxGradNorm"])
    grad_norm = None
    scale: float | None = None
    skipped = False
    if session.scaler is not None:
        session.scaler.unscale_(session.optimizer)
    if max_norm > 0:
        # TextBrewer clips the student's parameters only (projections are not clipped)
        grad_norm = torch.nn.utils.clip_grad_norm_(session.student.parameters(), max_norm)
        full_tensor = getattr(grad_norm, "full_tensor", None)  # the norm of a sharded (FSDP) student
        if full_tensor is not None:
            grad_norm = full_tensor()
    if session.scaler is not None:
        before = session.scaler.get_scale()
        session.scaler.step(session.optimizer)
        session.scaler.update()
        scale = session.scaler.get_scale()
        skipped = scale < before  # update() lowers the scale exactly when step() found inf/NaN gradients
    else:
        session.optimizer.step()
    if session.scheduler is not None:
        session.scheduler.step()
    session.optimizer.zero_grad(set_to_none=True)
    return grad_norm, scale, skipped


def log_scalars(session: TrainSession, reply: dict[str, Any]) -> None:
    step = session.forward_count
    session.writer.add_scalar("scalar/total_loss", reply["total"], step)
    for name, value in reply["terms"].items():
        session.writer.add_scalar(f"scalar/{name}", value, step)


def log_optimizer_scalars(session: TrainSession, reply: dict[str, Any]) -> None:
    """At each optimizer step: the learning rate of each parameter group (`train/lr` is the first group's), the
    gradient norm when clipping computes it, and where steps can be skipped, fp16's loss scale and the skip count."""
    step = session.forward_count
    writer = session.writer
    for i, group in enumerate(session.optimizer.param_groups):
        writer.add_scalar("train/lr" if i == 0 else f"train/lr_group{i}", float(group["lr"]), step)
    if "gradNorm" in reply:
        writer.add_scalar("train/grad_norm", reply["gradNorm"], step)
    if "lossScale" in reply:
        writer.add_scalar("train/loss_scale", reply["lossScale"], step)
    if reply.get("skipped"):
        session.skipped_steps += 1
    if session.scaler is not None or session.on_non_finite == "skip":
        writer.add_scalar("train/skipped_steps", session.skipped_steps, step)
