"""Layer similarity for choosing a student's layer map: linear CKA between hidden states and the similarity of
attention maps, measured on a sample in the worker.

    layer_similarity {teacher, student?, batches, attention?}
        -> {teacherCka, teacherAttention?, crossCka?, crossAttention?, tokens, layersT, layersS?}

Hidden states are compared on the tokens the attention mask keeps (padding left out), in float64. Linear CKA
(Kornblith et al., 2019) between two feature matrices X [n, d1] and Y [n, d2] with centred columns is
||Yᵀ X||²_F / (||Xᵀ X||_F · ||Yᵀ Y||_F): 1 for the same representation up to a rotation and a scale, near 0 for
unrelated ones. Attention similarity is the mean over kept query tokens of the cosine between two layers' head-averaged
attention rows (restricted to kept keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .device import to_device
from .wire.ops import WorkerState, call_model, ensure_eager_attention, op
from .wire.ops_types import LayerSimilarityArgs, LayerSimilarityResult


@dataclass(frozen=True)
class SimilarityRequest:
    teacher: str
    student: str | None
    batches: list[dict[str, torch.Tensor]]
    attention: bool

    @staticmethod
    def read(args: dict[str, Any]) -> SimilarityRequest:
        batches = args.get("batches")
        if not isinstance(batches, list) or not batches:
            raise ValueError("batches: expected a non-empty list of record batches with input_ids and attention_mask")
        for i, batch in enumerate(batches):
            if not isinstance(batch, dict) or "input_ids" not in batch or "attention_mask" not in batch:
                keys = ", ".join(batch) if isinstance(batch, dict) else type(batch).__name__
                raise ValueError(f"batches[{i}]: needs input_ids and attention_mask (got {keys})")
        return SimilarityRequest(
            teacher=str(args.get("teacher")),
            student=None if args["student"] is None else str(args["student"]),
            batches=batches,
            attention=bool(args["attention"]),
        )


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two feature matrices with the same rows [n, d1], [n, d2], computed in float64."""
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norm = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / norm) if float(norm) > 0 else 0.0


def cka_matrix(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[list[float]]:
    return [[linear_cka(x, y) for y in b] for x in a]


def attention_similarity(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean cosine between the rows of two head-averaged attention maps [batch, q, k], over kept queries and keys."""
    keep = mask.bool()
    pair = keep[:, :, None] & keep[:, None, :]
    a = (a.to(torch.float64) * pair).flatten(0, 1)
    b = (b.to(torch.float64) * pair).flatten(0, 1)
    rows = keep.flatten()
    cos = torch.nn.functional.cosine_similarity(a[rows], b[rows], dim=-1)
    return float(cos.mean())


@dataclass
class Features:
    hidden: list[torch.Tensor]  # per layer: the kept tokens' hidden states [n_tokens, d]
    attention: list[list[tuple[torch.Tensor, torch.Tensor]]]  # per layer, per batch: (head-mean map, mask)


def collect(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], attention: bool, device: Any) -> Features:
    if getattr(model, "config", None) is None:
        raise ValueError(f"model: a {type(model).__name__} is not a Hugging Face model with hidden states")
    flags: dict[str, Any] = {"output_hidden_states": True}
    if attention:
        flags["output_attentions"] = True
        ensure_eager_attention(model)
    hidden: list[list[torch.Tensor]] = []
    maps: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for raw in batches:
                batch = to_device({k: v for k, v in raw.items() if k != "labels"}, device)
                out = call_model(model, batch, flags)
                keep = batch["attention_mask"].bool()
                states = out.hidden_states
                if not hidden:
                    hidden = [[] for _ in states]
                for i, h in enumerate(states):
                    hidden[i].append(h[keep].to("cpu", torch.float64))
                if attention:
                    if out.attentions is None:
                        raise ValueError(f"model: {type(model).__name__} returned no attention maps")
                    if not maps:
                        maps = [[] for _ in out.attentions]
                    for i, att in enumerate(out.attentions):
                        maps[i].append((att.mean(1).to("cpu", torch.float64), keep.cpu()))
    finally:
        model.train(was_training)
    return Features(hidden=[torch.cat(parts) for parts in hidden], attention=maps)


def attention_matrix(a: Features, b: Features) -> list[list[float]]:
    out: list[list[float]] = []
    for la in a.attention:
        row = []
        for lb in b.attention:
            sims = [attention_similarity(x, y, m) for (x, m), (y, _) in zip(la, lb)]
            row.append(sum(sims) / len(sims))
        out.append(row)
    return out


@op("layer_similarity")
def layer_similarity(state: WorkerState, args: LayerSimilarityArgs) -> LayerSimilarityResult:
    request = SimilarityRequest.read(dict(args))
    teacher = collect(state.model({"model": request.teacher}), request.batches, request.attention, state.torch_device)
    result: LayerSimilarityResult = {
        "tokens": int(teacher.hidden[0].shape[0]),
        "layersT": len(teacher.hidden),
        "teacherCka": cka_matrix(teacher.hidden, teacher.hidden),
    }
    if request.attention:
        result["teacherAttention"] = attention_matrix(teacher, teacher)
    if request.student is not None:
        student = collect(
            state.model({"model": request.student}), request.batches, request.attention, state.torch_device
        )
        result["layersS"] = len(student.hidden)
        result["crossCka"] = cka_matrix(student.hidden, teacher.hidden)
        if request.attention:
            result["crossAttention"] = attention_matrix(student, teacher)
    return result
