"""Request handlers. Each takes the worker state and the decoded args and returns a JSON-able value (tensors allowed).

The server validates a request's args against its op's schema (ops_schema.json, generated from the TypeScript op
catalogue in src/worker/ops/) and fills in the defaults before the handler runs, so a handler reads its args as the
typed dict of ops_types.py: every field with a default is there, and no handler restates a default."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..batch_check import check_batch
from ..device import resolve_device, to_device
from .ops_types import (
    CreateModelArgs,
    DescribeArgs,
    DescribeResult,
    DisposeArgs,
    EchoArgs,
    InfoArgs,
    InfoResult,
    LoadModelArgs,
    NumParametersArgs,
    PingArgs,
    PredictArgs,
    SaveModelArgs,
    SaveModelResult,
    ShutdownArgs,
)
from .outputs import outputs_to_wire

# a handler's args are the TypedDict of its op (ops_types.py); the registry holds handlers of every op
Op = Callable[["WorkerState", Any], Any]
OPS: dict[str, Op] = {}


def op(name: str) -> Callable[[Op], Op]:
    def register(fn: Op) -> Op:
        OPS[name] = fn
        return fn

    return register


@dataclass
class WorkerState:
    device: str
    models: dict[str, torch.nn.Module] = field(default_factory=dict)
    next_model: int = 0
    shutdown_requested: bool = False
    # seconds spent waiting for the next request (a worker that idles between steps is starved by its client)
    idle_seconds: float = 0.0
    # the id of the request being handled (a step's look-ahead work is keyed by it)
    request_id: int = 0
    extensions: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.torch_device = resolve_device(self.device)

    def add_model(self, model: torch.nn.Module) -> str:
        self.next_model += 1
        handle = f"m{self.next_model}"
        self.models[handle] = model
        return handle

    def model(self, args: Mapping[str, Any], key: str = "model") -> torch.nn.Module:
        handle = args.get(key)
        if handle not in self.models:
            raise KeyError(f"{key}: no model '{handle}' in this worker (disposed, or from another worker?)")
        return self.models[handle]


@op("ping")
def ping(state: WorkerState, args: PingArgs) -> None:
    return None


@op("echo")
def echo(state: WorkerState, args: EchoArgs) -> Any:
    """Sends args back; `transpose: true` returns each 2-D tensor transposed (a non-contiguous view)."""
    if args.get("transpose"):
        return {k: (v.t() if isinstance(v, torch.Tensor) and v.dim() == 2 else v) for k, v in args.items()}
    return args


@op("info")
def info(state: WorkerState, args: InfoArgs) -> InfoResult:
    import numpy
    import transformers
    import zmq

    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "numpy": numpy.__version__,
        "cuda": cuda,
        "cudaVersion": torch.version.cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "device": str(state.torch_device),
        "threads": torch.get_num_threads(),
    }


@op("shutdown")
def shutdown(state: WorkerState, args: ShutdownArgs) -> None:
    state.shutdown_requested = True


@op("load_model")
def load_model(state: WorkerState, args: LoadModelArgs) -> dict[str, Any]:
    from ..models import init_report
    from ..models import load_model as load

    model = load(
        path=args.get("path"),
        task=args.get("task"),
        config=args.get("config"),
        factory=args.get("factory"),
        factory_args=args.get("factoryArgs"),
        format=args.get("format"),
        weights_only=args["weightsOnly"],
        trust_remote_code=args["trustRemoteCode"],
    )
    model.to(state.torch_device)
    return {**describe_handle(state, state.add_model(model)), "initReport": init_report(model)}


@op("create_model")
def create_model(state: WorkerState, args: CreateModelArgs) -> dict[str, Any]:
    from ..models import create_model as create
    from ..models import init_report

    init_from = state.model(args, "initFrom") if args["initFrom"] is not None else None
    model = create(config=args["config"], task=args.get("task"), init_from=init_from, layer_map=args["layerMap"])
    model.to(state.torch_device)
    return {**describe_handle(state, state.add_model(model)), "initReport": init_report(model)}


def describe_handle(state: WorkerState, handle: str) -> dict[str, Any]:
    from ..models import num_parameters

    model = state.models[handle]
    config = getattr(model, "config", None)
    return {
        "handle": handle,
        "className": type(model).__name__,
        "isHuggingFace": config is not None and hasattr(config, "to_dict"),
        "config": config.to_dict() if config is not None and hasattr(config, "to_dict") else None,
        "numParameters": num_parameters(model),
    }


@op("predict")
def predict(state: WorkerState, args: PredictArgs) -> Any:
    model = state.model(args)
    check_batch(args["batch"])
    batch = to_device(args["batch"], state.torch_device)
    flags: dict[str, Any] = {}
    if getattr(model, "config", None) is not None:
        if args["hidden"]:
            flags["output_hidden_states"] = True
        if args["attention"]:
            flags["output_attentions"] = True
            ensure_eager_attention(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            outputs = call_model(model, batch, flags)
    finally:
        model.train(was_training)
    return outputs_to_wire(outputs)


def ensure_eager_attention(model: torch.nn.Module) -> None:
    """SDPA kernels do not return attention maps; switch to the eager implementation when they are asked for."""
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "_attn_implementation", "eager") != "eager":
        setter = getattr(model, "set_attn_implementation", None)
        if setter is not None:
            setter("eager")
        else:
            config._attn_implementation = "eager"


def refuse_sharded(model: torch.nn.Module, op_name: str) -> torch.nn.Module:
    """`model` unless it is sharded over the ranks (FSDP2, while a run of strategy "fsdp" trains): then only
    collectives reach its whole weights, and a request to rank 0 alone would wait for the others."""
    fsdp = sys.modules.get("torch.distributed.fsdp")  # not imported: nothing is sharded
    if fsdp is not None and isinstance(model, fsdp.FSDPModule):
        raise ValueError(
            f"{op_name}: the student is sharded over the ranks (distributed.strategy 'fsdp') while it trains; "
            f"read the checkpoint's model/ folder (checkpointDir) in a callback, or call it after train() returns"
        )
    return model


def call_model(model: torch.nn.Module, batch: Any, extra: dict[str, Any]) -> Any:
    try:
        if isinstance(batch, dict):
            return model(**batch, **extra)
        if isinstance(batch, (list, tuple)):
            return model(*batch, **extra)
        if isinstance(batch, torch.Tensor):
            return model(batch, **extra)
    except (TypeError, RuntimeError, ValueError, IndexError) as exc:
        keys = ", ".join(batch) if isinstance(batch, dict) else f"{len(batch)} positional tensors"
        shapes = (
            ", ".join(f"{k}{list(v.shape)}" for k, v in batch.items() if isinstance(v, torch.Tensor))
            if isinstance(batch, dict)
            else ""
        )
        raise type(exc)(f"batch: the model ({type(model).__name__}) rejected it ({keys}; {shapes}): {exc}") from exc
    raise TypeError(f"batch: expected a record or an array of tensors, got {type(batch).__name__}")


@op("describe")
def describe(state: WorkerState, args: DescribeArgs) -> DescribeResult:
    from ..display import display_parameters

    return {"table": display_parameters(state.model(args), max_level=args["maxLevel"])}


@op("num_parameters")
def num_params(state: WorkerState, args: NumParametersArgs) -> int:
    from ..models import num_parameters

    return num_parameters(state.model(args), trainable_only=args["trainableOnly"])


@op("save_model")
def save_model(state: WorkerState, args: SaveModelArgs) -> SaveModelResult:
    from ..models import save_model as save

    files = save(refuse_sharded(state.model(args), "save_model"), args["dir"])
    return {"files": files}


@op("dispose")
def dispose(state: WorkerState, args: DisposeArgs) -> None:
    state.model(args)
    del state.models[args["model"]]
    if state.torch_device.type == "cuda":
        torch.cuda.empty_cache()
