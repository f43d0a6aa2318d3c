"""Loading models from checkpoint folders, state-dict files, TorchScript archives and factories.

Pure library functions: the server maps requests onto them. Every user-facing failure is a
``ModelLoadError`` (or ``ModelSaveError``) whose message starts with the offending field
(``path``, ``task``, ``format``, ``config``, ``factory``, ``factoryArgs``, ``layerMap``, ``initFrom``,
``directory``), quotes the value and says how to fix it. Field names are the TypeScript option names.

Nothing here touches the network: Hugging Face folders are read with ``local_files_only=True``, and a Hub id
(``org/name``) is found in the local Hugging Face cache by ``hub_cache`` or not at all.
Pickle-based files (.pt/.bin/.pkl) are read with ``torch.load(weights_only=True)`` unless the caller
explicitly passes ``weights_only=False`` (TS: ``weightsOnly: false``), which is only for trusted files. A folder
whose config.json names code of its own (``auto_map``) is refused unless ``trust_remote_code=True`` (TS:
``trustRemoteCode: true``); transformers always gets ``trust_remote_code`` explicitly, so it never prompts.
A file that cannot be read (truncated, damaged, not the expected format) is named in the error with the cause.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file as _safetensors_load_file

from ..file_errors import is_pickle_refusal, is_read_error, read_failure, read_json, torch_archive_problem
from ..hub_cache import resolve_local_path
from ..pyref import resolve_ref
from ..remote_code import check_model_folder
from .errors import ModelLoadError, _listing, _short_repr
from .hf_config import _CONFIG_FILE, _resolve_config
from .tasks import TASKS, _auto_class, _check_task, _is_hf_model, _task_of_model, infer_task

FORMATS: tuple[str, ...] = ("hf", "safetensors", "pt", "torchscript", "factory")

_HF_WEIGHT_FILES: tuple[str, ...] = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_PICKLE_EXTENSIONS = (".pt", ".pth", ".bin", ".pkl", ".ckpt")


# ------------------------------------------------------------------------------------- state dicts


def _is_torchscript_archive(path: Path) -> bool:
    """TorchScript archives are zip files with a ``<name>/code/`` folder; torch.save files have none."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_state_dict_file(path: str, weights_only: bool = True) -> dict[str, torch.Tensor] | torch.nn.Module:
    """Read a state dict from .safetensors (safetensors) or a pickle-based file (torch.load on CPU).

    With ``weights_only=False`` a pickled whole ``nn.Module`` is returned as is.
    """
    p = Path(path)
    if p.suffix == ".safetensors":
        try:
            return _safetensors_load_file(str(p), device="cpu")
        except Exception as err:
            raise ModelLoadError(f"path: {read_failure(path, err)}") from err
    if _is_torchscript_archive(p):
        raise ModelLoadError(
            f"path: '{path}' is a TorchScript archive, not a state dict; load it with format 'torchscript'"
        )
    try:
        loaded = torch.load(str(p), map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as err:
        if weights_only and is_pickle_refusal(err):
            raise ModelLoadError(
                f"path: '{path}' contains pickled Python objects that weights-only loading refuses "
                f"({str(err).splitlines()[0] if str(err) else 'unsupported global'}). If you trust this "
                "file, load it with `weightsOnly: false` — that runs code stored in the file, so only do "
                "it for files you trust; better, re-save the weights as .safetensors"
            ) from err
        raise ModelLoadError(f"path: {read_failure(path, err)}") from err
    except Exception as err:
        raise ModelLoadError(f"path: {read_failure(path, err)}") from err
    if isinstance(loaded, torch.nn.Module):
        return loaded
    if not isinstance(loaded, Mapping):
        raise ModelLoadError(
            f"path: '{path}' holds a {type(loaded).__name__}, not a state dict (a dict of name -> tensor); "
            "save it with torch.save(model.state_dict(), ...)"
        )
    bad = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelLoadError(
            f"path: '{path}' is a dict but not a state dict: entries {_listing(bad)} are not tensors; "
            "save it with torch.save(model.state_dict(), ...)"
        )
    return dict(loaded)


def _load_into(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with a readable error; tied weights may appear under one name only."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k} (file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)})"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing:
        # A key tied to another key that the file does provide is fine (safetensors drops duplicates).
        loaded_ptrs = {own[k].data_ptr() for k in own if k in state_dict and own[k].numel() > 0}
        missing = [k for k in missing if not (own[k].numel() > 0 and own[k].data_ptr() in loaded_ptrs)]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_listing(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches {_listing(mismatched)}")
        raise ModelLoadError(
            f"path: '{source}' does not fit the model built from config/factory: {'; '.join(parts)}. "
            f"{_prefix_hint(missing, unexpected)}Check that config (and task, e.g. 'sequence-classification' "
            "vs 'base') describe the model that saved these weights"
        )
    with torch.no_grad():
        model.load_state_dict(dict(state_dict), strict=False)
    model._textbrewer_load_report = {  # type: ignore[attr-defined]
        "task": _task_of_model(model) if _is_hf_model(model) else None,
        "path": source,
        "missing_keys": [],
        "unexpected_keys": [],
        "mismatched_keys": [],
        "checkpoint_shapes": {},
    }


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str:
    """Spot the common case of keys that differ only by a leading module name (e.g. 'bert.')."""

    def shared_prefix(longer: list[str], shorter: list[str]) -> str | None:
        split = [key.split(".", 1) for key in longer if "." in key]
        if not split or not shorter:
            return None
        heads = [head for head, _ in split]
        head = max(set(heads), key=heads.count)
        targets = set(shorter)
        hits = sum(1 for h, rest in split if h == head and rest in targets)
        return head if hits * 2 >= len(targets) else None

    head = shared_prefix(unexpected, missing)
    if head is not None:
        return f"The file's keys carry a '{head}.' prefix that the model lacks (a model with a task head saved them). "
    head = shared_prefix(missing, unexpected)
    if head is not None:
        return f"The model's keys carry a '{head}.' prefix that the file lacks (a base model saved them). "
    return ""


def _weights_in_folder(folder: Path) -> Path | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    return None


def _checkpoint_model_folder(path: str) -> str:
    """A training checkpoint (gs{step}) keeps the student's Hugging Face folder in ``model/``: loading the checkpoint
    loads that folder."""
    p = Path(path)
    inner = p / "model"
    if not p.is_dir() or (p / _CONFIG_FILE).exists() or _weights_in_folder(p) is not None or not inner.is_dir():
        return path
    return str(inner) if (inner / _CONFIG_FILE).is_file() or _weights_in_folder(inner) is not None else path


def _state_dict_source(path: str, weights_only: bool) -> tuple[dict[str, torch.Tensor] | torch.nn.Module, str]:
    p = Path(path)
    if p.is_dir():
        weights = _weights_in_folder(p)
        if weights is None:
            raise ModelLoadError(
                f"path: '{path}' is a folder without model.safetensors or pytorch_model.bin; "
                "give the weights file itself"
            )
        p = weights
    return load_state_dict_file(str(p), weights_only=weights_only), str(p)


# -------------------------------------------------------------------------------------------- factories


def _resolve_factory(factory: str) -> Any:
    return resolve_ref(factory, "factory", ModelLoadError)


def _call_factory(factory: str, factory_args: Mapping[str, Any] | None) -> torch.nn.Module:
    if factory_args is not None and not isinstance(factory_args, Mapping):
        raise ModelLoadError(f"factoryArgs: expected an object of keyword arguments, got {_short_repr(factory_args)}")
    fn = _resolve_factory(factory)
    try:
        model = fn(**dict(factory_args or {}))
    except Exception as err:
        raise ModelLoadError(
            f"factory: '{factory}' raised {type(err).__name__}: {err} (called with factoryArgs "
            f"{_short_repr(dict(factory_args or {}))})"
        ) from err
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(
            f"factory: '{factory}' returned a {type(model).__name__}; it must return a torch.nn.Module"
        )
    return model


# ------------------------------------------------------------------------------------------- loading


def _detect_format(path: str | None, factory: str | None, config: Any) -> str:
    if path is None:
        if factory is not None:
            return "factory"
        raise ModelLoadError("path: missing; give a checkpoint folder or file, or a factory 'file.py:function'")
    p = Path(path)
    if factory is not None:
        return "factory"
    if p.is_dir():
        if (p / _CONFIG_FILE).is_file() and any((p / n).is_file() for n in _HF_WEIGHT_FILES):
            return "hf"
        weights = _weights_in_folder(p)
        if config is not None and weights is not None:
            return "safetensors" if weights.suffix == ".safetensors" else "pt"
        raise ModelLoadError(
            f"path: '{path}' is not a checkpoint folder: expected config.json with model.safetensors or "
            "pytorch_model.bin (or their sharded .index.json); save one with save_pretrained, or point to a "
            "weights file and pass config"
        )
    if p.suffix == ".safetensors":
        return "safetensors"
    if _is_torchscript_archive(p):
        return "torchscript"
    if p.suffix in _PICKLE_EXTENSIONS:
        return "pt"
    raise ModelLoadError(
        f"path: cannot tell the format of '{path}' from its extension; pass format ({', '.join(FORMATS)})"
    )


def _weight_files(folder: Path, single: str, index_name: str) -> list[Path]:
    files = [folder / single] if (folder / single).is_file() else []
    index = folder / index_name
    if index.is_file():
        try:
            files += [folder / name for name in sorted(set(read_json(index)["weight_map"].values()))]
        except Exception as err:
            raise ModelLoadError(f"path: {read_failure(index, err)}") from err
    return files


def _check_weight_files(folder: Path) -> None:
    """Reads the header of every weights file (cheap), so a truncated or damaged one is named before transformers
    reads it (which reports a SafetensorError without the file, or a bare "Invalid argument")."""
    from safetensors import safe_open

    for file in _weight_files(folder, "model.safetensors", "model.safetensors.index.json"):
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except Exception as err:
            raise ModelLoadError(f"path: {read_failure(file, err)}; save or copy the model again") from err
    for file in _weight_files(folder, "pytorch_model.bin", "pytorch_model.bin.index.json"):
        try:
            problem = torch_archive_problem(file)
        except Exception as err:
            raise ModelLoadError(f"path: {read_failure(file, err)}") from err
        if problem is not None:
            raise ModelLoadError(f"path: '{file}' {problem}; save or copy the model again")


def _load_hf_folder(
    path: str, task: str | None, config: Mapping[str, Any] | None, weights_only: bool, trust_remote_code: bool
) -> torch.nn.Module:
    from transformers import AutoConfig

    if config is not None and not isinstance(config, Mapping):
        raise ModelLoadError(
            "config: with a Hugging Face folder, config must be an object of overrides (e.g. "
            f"{{num_labels: 3}}), got {_short_repr(config)}"
        )
    if not (Path(path) / _CONFIG_FILE).is_file():
        raise ModelLoadError(
            f"path: '{path}' is not a checkpoint folder: expected config.json with model.safetensors or "
            "pytorch_model.bin"
        )
    check_model_folder(Path(path), trust_remote_code, ModelLoadError)
    try:
        hf_config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise ModelLoadError(f"path: '{path}/config.json' could not be read ({err})") from err
    overrides = dict(config or {})
    for key, value in overrides.items():
        # num_labels is a property that resets id2label/label2id only when the count changes.
        setattr(hf_config, key, value)
    chosen = task if task is not None else infer_task(hf_config)
    auto = _auto_class(chosen)
    _check_weight_files(Path(path))
    try:
        model, info = auto.from_pretrained(
            path,
            config=hf_config,
            local_files_only=True,
            trust_remote_code=trust_remote_code,
            weights_only=weights_only,
            # Overriding e.g. num_labels re-initialises a head whose shape no longer fits.
            ignore_mismatched_sizes=bool(overrides),
            output_loading_info=True,
        )
    except ValueError as err:
        if "Unrecognized configuration class" in str(err):
            raise ModelLoadError(
                f"task: '{chosen}' has no {type(hf_config).__name__.replace('Config', '')} head in "
                f"transformers; use another task (one of {', '.join(TASKS)})"
            ) from err
        raise ModelLoadError(f"path: '{path}' could not be loaded as task '{chosen}' ({err})") from err
    except Exception as err:
        weights = _weights_in_folder(Path(path)) or Path(path)
        if weights_only and is_pickle_refusal(_unpickling_error(err)):
            raise ModelLoadError(
                f"path: '{weights}' holds pickled Python objects that weights-only loading refuses; if you "
                "trust the folder, load it with `weightsOnly: false` (only for trusted files), or re-save it "
                "with safetensors"
            ) from err
        if isinstance(err, OSError) or is_read_error(err):
            raise ModelLoadError(f"path: {read_failure(weights, err)}") from err
        raise
    mismatched = [str(k[0]) if isinstance(k, tuple) else str(k) for k in info.get("mismatched_keys", [])]
    model._textbrewer_load_report = {  # type: ignore[attr-defined]
        "task": chosen,
        "path": path,
        "missing_keys": list(info.get("missing_keys", [])),
        "unexpected_keys": list(info.get("unexpected_keys", [])),
        "mismatched_keys": mismatched,
        "checkpoint_shapes": _checkpoint_shapes(Path(path), mismatched, getattr(model, "base_model_prefix", "")),
    }
    return model


def _checkpoint_shapes(folder: Path, names: list[str], prefix: str) -> dict[str, list[int]]:
    """Shapes that the folder's safetensors files give the model keys ``names`` (read from the headers; a key may be
    saved with or without the base model's prefix). Keys of pytorch_model.bin files are left out."""
    if not names:
        return {}
    from safetensors import safe_open

    saved: dict[str, list[int]] = {}
    for file in _weight_files(folder, "model.safetensors", "model.safetensors.index.json"):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open has keys() but is not iterable)
                saved[key] = list(handle.get_slice(key).get_shape())
    shapes: dict[str, list[int]] = {}
    for name in names:
        bare = name[len(prefix) + 1 :] if prefix and name.startswith(f"{prefix}.") else name
        for key in (name, bare, f"{prefix}.{name}"):
            if key in saved:
                shapes[name] = saved[key]
                break
    return shapes


def _unpickling_error(err: BaseException) -> BaseException:
    """The UnpicklingError in the chain of ``err`` (``err`` itself when there is none)."""
    seen: BaseException | None = err
    for _ in range(10):
        if seen is None:
            return err
        if isinstance(seen, pickle.UnpicklingError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return err


def _build_from_config(config: Any, task: str | None, trust_remote_code: bool) -> tuple[torch.nn.Module, str]:
    hf_config = _resolve_config(config, trust_remote_code)
    chosen = task if task is not None else infer_task(hf_config)
    try:
        return _auto_class(chosen).from_config(hf_config, trust_remote_code=trust_remote_code), chosen
    except ValueError as err:
        raise ModelLoadError(
            f"task: '{chosen}' has no head for model_type '{hf_config.model_type}' in transformers "
            f"({str(err).splitlines()[0]}); use another task (one of {', '.join(TASKS)})"
        ) from err


def load_model(
    path: str | None = None,
    task: str | None = None,
    config: Mapping[str, Any] | str | None = None,
    factory: str | None = None,
    factory_args: Mapping[str, Any] | None = None,
    format: str | None = None,
    weights_only: bool = True,
    trust_remote_code: bool = False,
) -> torch.nn.Module:
    """Load a model on the CPU (the caller moves it to the device).

    A config.json with an ``auto_map`` (code shipped in the folder) is refused unless ``trust_remote_code``.

    - ``format="hf"`` (a folder with config.json + model.safetensors / pytorch_model.bin, sharded too):
      ``AutoModelFor<task>.from_pretrained``; ``config`` entries override the folder's config (e.g.
      num_labels, which then re-initialises a head whose shape changed). ``task=None`` takes the head
      named by the config's ``architectures`` (else "base"). The loading report (task, path, missing_keys,
      unexpected_keys, mismatched_keys, checkpoint_shapes) is kept as ``model._textbrewer_load_report``
      (``init_report`` gives its wire form; a strict state-dict load records an empty one).
    - ``"safetensors"`` / ``"pt"``: a state-dict file (or a folder holding model.safetensors or
      pytorch_model.bin) loaded strictly into a model built from ``config`` (an HF config dict with
      model_type, or a config.json path / folder) or from ``factory``. A key tied to a loaded key may be
      absent. A .pt holding a pickled whole module needs ``weights_only=False``.
    - ``"torchscript"``: ``torch.jit.load`` (also auto-detected for TorchScript archives).
    - ``"factory"``: ``factory="file.py:function"`` (or "package.module:function") called with
      ``factory_args``; with ``path`` the state dict there is loaded into the returned module.
    - ``format=None`` detects the format from the path (folder content, extension, archive content).

    A ``path`` that does not exist but is shaped like a Hugging Face id (``org/name``) is the snapshot folder of that
    id in the local Hugging Face cache (see hub_cache; never downloaded).
    """
    _check_task(task)
    if format is not None and format not in FORMATS:
        raise ModelLoadError(f"format: '{format}' is not known; use one of {', '.join(FORMATS)} or leave it unset")
    if factory_args is not None and factory is None:
        raise ModelLoadError("factoryArgs: given without factory; pass factory 'file.py:function' as well")
    if format == "factory" and factory is None:
        raise ModelLoadError("factory: format 'factory' needs factory 'path/to/file.py:function'")
    if path is not None:
        path = _checkpoint_model_folder(resolve_local_path(path))
    if path is not None and not Path(path).exists():
        raise ModelLoadError(
            f"path: '{path}' does not exist (relative paths are resolved against the worker's working "
            f"directory '{os.getcwd()}'); give an existing checkpoint folder or file"
        )
    fmt = format if format is not None else _detect_format(path, factory, config)
    if factory is not None and fmt not in ("factory", "safetensors", "pt"):
        raise ModelLoadError(f"format: '{fmt}' cannot be combined with factory; use 'factory', 'safetensors' or 'pt'")

    if fmt == "hf":
        if path is None or not Path(path).is_dir():
            raise ModelLoadError(f"path: format 'hf' needs a checkpoint folder, got '{path}'")
        return _load_hf_folder(path, task, config, weights_only, trust_remote_code)  # type: ignore[arg-type]

    if fmt == "torchscript":
        if path is None or not Path(path).is_file():
            raise ModelLoadError(f"path: format 'torchscript' needs a TorchScript file, got '{path}'")
        try:
            return torch.jit.load(path, map_location="cpu")
        except Exception as err:
            raise ModelLoadError(
                f"path: '{path}' is not a TorchScript file that torch.jit.load accepts "
                f"({str(err).splitlines()[0]}); "
                "save it with torch.jit.save(torch.jit.script(model), ...) or pick another format"
            ) from err

    # State dict (+ config or factory), or a bare factory.
    if factory is not None:
        if config is not None:
            raise ModelLoadError("config: give either config or factory, not both; the factory builds the model")
        model = _call_factory(factory, factory_args)
        if path is not None:
            state, source = _state_dict_source(path, weights_only)
            if isinstance(state, torch.nn.Module):
                state = state.state_dict()
            _load_into(model, state, source)
        return model

    if path is None:
        raise ModelLoadError(f"path: format '{fmt}' needs a weights file")
    state, source = _state_dict_source(path, weights_only)
    if fmt == "safetensors" and not source.endswith(".safetensors"):
        raise ModelLoadError(f"format: 'safetensors' does not fit '{source}'; use format 'pt' or leave it unset")
    if isinstance(state, torch.nn.Module):
        if config is None:
            return state
        state = state.state_dict()
    if config is None:
        raise ModelLoadError(
            f"config: '{path}' is a bare state dict; give config (an HF config dict with model_type, or a "
            "path to config.json) or a factory 'file.py:function' that builds the module"
        )
    model, _ = _build_from_config(config, task, trust_remote_code)
    _load_into(model, state, source)
    return model


# ------------------------------------------------------------------------------------------- creating
