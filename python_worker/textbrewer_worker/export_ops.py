"""Ops that export a model for use outside the worker: a complete Hugging Face folder, and ONNX."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ops import WorkerState, op, require
from .tokenizer_ops import _tokenizer


@dataclass(frozen=True)
class ExportModelArgs:
    model: str
    dir: str
    tokenizer: str | None
    readme: str | None
    labels: list[str] | None

    @staticmethod
    def read(args: dict[str, Any]) -> ExportModelArgs:
        return ExportModelArgs(
            model=require(args, "model", str),
            dir=require(args, "dir", str),
            tokenizer=args.get("tokenizer"),
            readme=args.get("readme"),
            labels=args.get("labels"),
        )


@op("export_model")
def export_model(state: WorkerState, args: dict[str, Any]) -> dict[str, Any]:
    from .models.export import export_model as export

    a = ExportModelArgs.read(args)
    tokenizer = _tokenizer(state, {"tokenizer": a.tokenizer}) if a.tokenizer is not None else None
    files = export(state.model(args), a.dir, tokenizer=tokenizer, readme=a.readme, labels=a.labels)
    return {"files": files}


@dataclass(frozen=True)
class ExportOnnxArgs:
    model: str
    path: str
    sample: dict[str, Any] | None
    opset: int
    dynamic_axes: Any

    @staticmethod
    def read(args: dict[str, Any]) -> ExportOnnxArgs:
        return ExportOnnxArgs(
            model=require(args, "model", str),
            path=require(args, "path", str),
            sample=args.get("sample"),
            opset=require(args, "opset", int),
            dynamic_axes=args.get("dynamicAxes", True),
        )


@op("export_onnx")
def export_onnx(state: WorkerState, args: dict[str, Any]) -> dict[str, Any]:
    from .models.onnx_export import export_onnx as export

    a = ExportOnnxArgs.read(args)
    return export(state.model(args), a.path, sample=a.sample, opset=a.opset, dynamic_axes=a.dynamic_axes)
