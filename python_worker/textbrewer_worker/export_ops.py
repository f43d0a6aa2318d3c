"""Ops that export a model for use outside the worker: a complete Hugging Face folder, and ONNX."""

from __future__ import annotations

from typing import Any, cast

from .tokenizer_ops import _tokenizer
from .wire.ops import WorkerState, op
from .wire.ops_types import DisposeTokenizerArgs, ExportModelArgs, ExportModelResult, ExportOnnxArgs, ExportOnnxResult


@op("export_model")
def export_model(state: WorkerState, args: ExportModelArgs) -> ExportModelResult:
    from .models.export import export_model as export

    handle = args["tokenizer"]
    tokenizer = _tokenizer(state, DisposeTokenizerArgs(tokenizer=handle)) if handle is not None else None
    files = export(state.model(args), args["dir"], tokenizer=tokenizer, readme=args["readme"], labels=args["labels"])
    return {"files": files}


@op("export_onnx")
def export_onnx(state: WorkerState, args: ExportOnnxArgs) -> ExportOnnxResult:
    from .models.onnx_export import export_onnx as export

    sample = cast(dict[str, Any] | None, args["sample"])
    result = export(
        state.model(args), args["path"], sample=sample, opset=args["opset"], dynamic_axes=args["dynamicAxes"]
    )
    return cast(ExportOnnxResult, result)
