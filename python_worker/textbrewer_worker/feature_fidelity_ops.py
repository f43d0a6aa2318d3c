"""Worker op: the fidelity report of cached teacher features on a sample batch, before a cache is filled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch

from .device import to_device
from .teacher_features import cached_results, encode_features, select_features
from .terms import TermInputs, build_terms
from .terms.match import MatchTerm
from .training.adaptor import apply_adaptor
from .training.objective import post_adaptor
from .training.session import output_flags, split_batch
from .wire.ops import WorkerState, call_model, op
from .wire.ops_types import TeacherFeatureFidelityArgs, TeacherFeatureFidelityResult


def feature_refs(matches: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The (feature, layer) entries the matches read from the teacher, in first-seen order."""
    refs: list[dict[str, Any]] = []
    for m in matches:
        for layer in m["layerT"] if isinstance(m["layerT"], (list, tuple)) else [m["layerT"]]:
            ref = {"feature": m["feature"], "layer": int(layer)}
            if ref not in refs:
                refs.append(ref)
    return refs


def adapted(model: torch.nn.Module, spec: dict[str, Any], batch: Any, forward_args: dict[str, Any]) -> dict[str, Any]:
    """The adaptor's results of an eval-mode forward without gradients (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = call_model(model, batch, {**forward_args, **output_flags(model, spec)})
            return post_adaptor(apply_adaptor(spec, batch, out))
    finally:
        model.train(was_training)


@op("teacher_feature_fidelity")
def teacher_feature_fidelity(state: WorkerState, args: TeacherFeatureFidelityArgs) -> TeacherFeatureFidelityResult:
    """Each match's loss from live teacher features and from each storage form of them, and bytes per example."""
    device = state.torch_device
    batch_T, batch_S = split_batch(to_device(args["batch"], device))
    results_T = adapted(state.model({"model": args["teacher"]}), args["adaptorT"], batch_T, args["forwardArgs"])
    results_S = adapted(state.model({"model": args["student"]}), args["adaptorS"], batch_S, args["forwardArgs"])
    specs = [dict(m) for m in args["matches"]]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(args["seed"])
        terms = [t for t in build_terms(specs, device) if isinstance(t, MatchTerm)]
    items = feature_refs(specs)
    live = select_features(results_T, items)
    examples = int(live[0].shape[0]) if live and live[0].ndim else 1

    def losses(first_T: dict[str, Any]) -> list[float]:
        inputs = TermInputs(results_S, [first_T], None, None, None, {})
        with torch.no_grad():
            return [float(t(inputs)[1][t.name]) for t in terms]

    live_losses = losses(results_T)
    stored: list[list[dict[str, Any]]] = [[] for _ in terms]
    sizes = []
    for dtype in args["dtypes"]:
        tensors = encode_features(live, dtype)
        sizes.append({"dtype": dtype, "bytes": sum(t.numel() * t.element_size() for t in tensors) / examples})
        values = losses(cached_results({"items": items, "dtype": dtype, "tensors": tensors}, device))
        for i, (value, reference) in enumerate(zip(values, live_losses)):
            diff = abs(value - reference)
            relative = diff / abs(reference) if reference != 0 else (0.0 if diff == 0 else float("inf"))
            stored[i].append({"dtype": dtype, "loss": value, "absDiff": diff, "relDiff": relative})
    matches = [{"name": t.name, "live": v, "stored": s} for t, v, s in zip(terms, live_losses, stored)]
    return cast(TeacherFeatureFidelityResult, {"examples": examples, "bytesPerExample": sizes, "matches": matches})
