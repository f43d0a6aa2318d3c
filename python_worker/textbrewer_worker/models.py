"""Loading, creating, saving and counting the models that the worker holds behind handles.

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
import re
import shutil
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file as _safetensors_load_file
from safetensors.torch import save_model as _safetensors_save_model

from .file_errors import is_pickle_refusal, is_read_error, read_failure, read_json, torch_archive_problem
from .hub_cache import resolve_local_path
from .pyref import resolve_ref
from .remote_code import check_file, check_model_folder

__all__ = [
    "FORMATS",
    "TASKS",
    "ModelLoadError",
    "ModelSaveError",
    "create_model",
    "infer_task",
    "init_report",
    "load_model",
    "load_state_dict_file",
    "num_parameters",
    "save_model",
    "write_model_files",
]

TASKS: tuple[str, ...] = (
    "sequence-classification",
    "token-classification",
    "question-answering",
    "masked-lm",
    "causal-lm",
    "base",
)

_AUTO_CLASS_NAMES: dict[str, str] = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "masked-lm": "AutoModelForMaskedLM",
    "causal-lm": "AutoModelForCausalLM",
    "base": "AutoModel",
}

# Architecture-name suffixes, used when the auto mappings do not know an architecture.
_ARCH_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ForSequenceClassification", "sequence-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "masked-lm"),
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
)

FORMATS: tuple[str, ...] = ("hf", "safetensors", "pt", "torchscript", "factory")

_CONFIG_FILE = "config.json"
_HF_WEIGHT_FILES: tuple[str, ...] = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Files a checkpoint folder written by save_model may contain; on overwrite these are replaced,
# anything else in the folder (a tokenizer, notes) is carried over into the new folder.
_CHECKPOINT_FILE_RE = re.compile(
    r"^(config\.json|generation_config\.json"
    r"|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json"
    r"|pytorch_model(-\d+-of-\d+)?\.bin|pytorch_model\.bin\.index\.json)$"
)
_PICKLE_EXTENSIONS = (".pt", ".pth", ".bin", ".pkl", ".ckpt")
_MAX_LISTED = 5


class ModelLoadError(ValueError):
    """A model could not be loaded or created; the message names the field, the value and the fix."""


class ModelSaveError(ValueError):
    """A model could not be saved; the message names the field, the value and the fix."""


# --------------------------------------------------------------------------------------------- helpers


def _auto_class(task: str) -> Any:
    import transformers

    return getattr(transformers, _AUTO_CLASS_NAMES[task])


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise ModelLoadError(f"task: '{task}' is not a known task; use one of {', '.join(TASKS)}")


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" (and {more} more)" if more > 0 else "")


def _is_hf_model(model: Any) -> bool:
    from transformers import PreTrainedModel

    return isinstance(model, PreTrainedModel)


def infer_task(config: Any, default: str = "base") -> str:
    """The task whose auto class builds one of ``config.architectures`` (e.g. BertForSequenceClassification →
    sequence-classification); ``default`` when there is none or it is unknown."""
    architectures = list(getattr(config, "architectures", None) or [])
    for arch in architectures:
        for task in TASKS:
            mapping = getattr(_auto_class(task), "_model_mapping", None)
            try:
                classes = mapping[type(config)] if mapping is not None else None
            except (KeyError, ValueError):
                classes = None
            if classes is None:
                continue
            classes = classes if isinstance(classes, (tuple, list)) else (classes,)
            if any(getattr(cls, "__name__", None) == arch for cls in classes):
                return task
        for suffix, task in _ARCH_SUFFIXES:
            if arch.endswith(suffix):
                return task
    return default


def _task_of_model(model: torch.nn.Module, default: str = "base") -> str:
    class_name = type(model).__name__
    config = getattr(model, "config", None)
    if config is not None:
        for task in TASKS:
            mapping = getattr(_auto_class(task), "_model_mapping", None)
            try:
                classes = mapping[type(config)] if mapping is not None else None
            except (KeyError, ValueError):
                continue
            classes = classes if isinstance(classes, (tuple, list)) else (classes,)
            if any(cls is type(model) for cls in classes):
                return task
    for suffix, task in _ARCH_SUFFIXES:
        if class_name.endswith(suffix):
            return task
    return default


def _config_from_dict(config: Mapping[str, Any]) -> Any:
    from transformers import AutoConfig

    values = dict(config)
    model_type = values.pop("model_type", None)
    if not model_type:
        raise ModelLoadError(
            f"config: {_short_repr(config)} has no 'model_type'; give a Hugging Face config dict with "
            "model_type (e.g. {model_type: 'bert', ...}) or a path to a config.json"
        )
    try:
        return AutoConfig.for_model(model_type, **values)
    except ValueError as err:
        raise ModelLoadError(
            f"config: model_type '{model_type}' is not known to transformers ({err}); check the spelling "
            "(e.g. 'bert', 'roberta', 'gpt2')"
        ) from err


def _config_from_path(path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"config: '{path}' does not exist; give a config dict or an existing config.json path")
    if p.is_dir() and not (p / _CONFIG_FILE).is_file():
        raise ModelLoadError(f"config: folder '{path}' has no config.json; point to the config.json itself")
    check_file(p / _CONFIG_FILE if p.is_dir() else p, trust_remote_code, ModelLoadError, field="config")
    try:
        return AutoConfig.from_pretrained(str(p), local_files_only=True, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise ModelLoadError(f"config: '{path}' could not be read as a Hugging Face config ({err})") from err


def _resolve_config(config: Mapping[str, Any] | str | os.PathLike[str], trust_remote_code: bool = False) -> Any:
    if isinstance(config, Mapping):
        return _config_from_dict(config)
    if isinstance(config, (str, os.PathLike)):
        return _config_from_path(os.fspath(config), trust_remote_code)
    raise ModelLoadError(f"config: expected a config dict or a path to a config.json, got {type(config).__name__}")


def _short_repr(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        path = resolve_local_path(path)
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


def _layer_lists(model: torch.nn.Module, expected: int | None) -> dict[str, int]:
    """Names and lengths of the ModuleLists that look like the stack of transformer layers."""
    found: dict[str, int] = {}
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        if expected is not None and len(module) != expected:
            continue
        kinds = {type(child) for child in module}
        if len(kinds) == 1:
            found[name] = len(module)
    return found


def _num_layers(config: Any) -> int | None:
    try:
        value = getattr(config, "num_hidden_layers", None)
    except AttributeError:
        value = None
    return int(value) if isinstance(value, int) else None


def _find_layer_prefix(student: torch.nn.Module, teacher: torch.nn.Module) -> str | None:
    s_lists = _layer_lists(student, _num_layers(getattr(student, "config", None)))
    t_lists = _layer_lists(teacher, _num_layers(getattr(teacher, "config", None)))
    common = [name for name in s_lists if name in t_lists]
    if not common:
        return None
    t_params = dict(teacher.named_modules())

    def size(name: str) -> int:
        return sum(p.numel() for p in t_params[name].parameters())

    return max(common, key=size)


def _default_layer_map(n_student: int, n_teacher: int) -> list[int]:
    if n_student > n_teacher:
        raise ModelLoadError(
            f"layerMap: the student has {n_student} layers but the teacher (initFrom) only {n_teacher}; "
            f"pass layerMap with {n_student} teacher layer indices in 0..{n_teacher - 1}"
        )
    return list(range(n_student))


def _check_layer_map(layer_map: Any, n_student: int, n_teacher: int) -> list[int]:
    if not isinstance(layer_map, (list, tuple)) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in layer_map
    ):
        raise ModelLoadError(f"layerMap: expected a list of integers, got {_short_repr(layer_map)}")
    if len(layer_map) != n_student:
        raise ModelLoadError(
            f"layerMap: {list(layer_map)} has {len(layer_map)} entries but the student has {n_student} "
            "layers; give one teacher layer index per student layer"
        )
    bad = [i for i in layer_map if not 0 <= i < n_teacher]
    if bad:
        raise ModelLoadError(
            f"layerMap: {list(layer_map)} has indices {bad} out of range; the teacher (initFrom) has "
            f"{n_teacher} layers, so use 0..{n_teacher - 1}"
        )
    return list(layer_map)


def _student_config(config: Mapping[str, Any], init_from: torch.nn.Module | None) -> Any:
    if init_from is None:
        return _config_from_dict(config)
    base_config = getattr(init_from, "config", None)
    if base_config is None or not hasattr(base_config, "to_dict"):
        raise ModelLoadError(
            f"initFrom: a {type(init_from).__name__} has no Hugging Face config; initFrom must be a Hugging "
            "Face model (loaded from a checkpoint folder or created with createModel)"
        )
    values = base_config.to_dict()
    for key in ("_name_or_path", "transformers_version", "architectures"):
        values.pop(key, None)
    if (
        "num_labels" in config
        and "id2label" not in config
        and len(values.get("id2label") or {}) != config["num_labels"]
    ):
        values.pop("id2label", None)
        values.pop("label2id", None)
    values.update(config)
    if values.get("model_type") != base_config.model_type:
        return _config_from_dict(values)
    try:
        return type(base_config).from_dict(values)
    except Exception as err:
        raise ModelLoadError(f"config: {_short_repr(dict(config))} does not fit the teacher's config ({err})") from err


def _copy_weights(student: torch.nn.Module, teacher: torch.nn.Module, layer_map: list[int] | None) -> dict[str, Any]:
    prefix = _find_layer_prefix(student, teacher)
    s_state = student.state_dict()
    t_state = teacher.state_dict()
    if prefix is not None:
        modules = dict(student.named_modules())
        t_modules = dict(teacher.named_modules())
        n_student = len(modules[prefix])  # type: ignore[arg-type]
        n_teacher = len(t_modules[prefix])  # type: ignore[arg-type]
        layer_map = (
            _default_layer_map(n_student, n_teacher)
            if layer_map is None
            else _check_layer_map(layer_map, n_student, n_teacher)
        )
    elif layer_map is not None:
        raise ModelLoadError(
            f"layerMap: {_short_repr(layer_map)} given but no stack of layers common to student and teacher "
            "was found; leave layerMap out"
        )
    layer_re = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(.+)$") if prefix is not None else None
    copied: dict[str, str] = {}
    random_init: list[str] = []
    missing: list[str] = []
    shape_mismatch: list[str] = []
    teacher_shapes: dict[str, list[int]] = {}
    used: set[str] = set()
    with torch.no_grad():
        for key, target in s_state.items():
            source_key = key
            match = layer_re.match(key) if layer_re is not None else None
            if match is not None and layer_map is not None:
                source_key = f"{prefix}.{layer_map[int(match.group(1))]}.{match.group(2)}"
            source = t_state.get(source_key)
            if source is None:
                missing.append(key)
                random_init.append(key)
                continue
            used.add(source_key)
            if tuple(source.shape) != tuple(target.shape):
                shape_mismatch.append(key)
                teacher_shapes[key] = list(source.shape)
                random_init.append(key)
            else:
                target.copy_(source)
                copied[key] = source_key
    # A key tied to a copied weight (e.g. an LM decoder sharing the word embeddings) holds the copy too.
    copied_ptrs = {s_state[k].data_ptr() for k in copied if s_state[k].numel() > 0}
    tied = {k for k in missing if s_state[k].numel() > 0 and s_state[k].data_ptr() in copied_ptrs}
    missing = [k for k in missing if k not in tied]
    random_init = [k for k in random_init if k not in tied]
    # Teacher layers left out by the layer map are dropped on purpose; anything else the student has no use for
    # (e.g. the teacher's head under another task) is reported.
    t_layer_re = re.compile(rf"^{re.escape(prefix)}\.\d+\.") if prefix is not None else None
    unexpected = [k for k in t_state if k not in used and not (t_layer_re is not None and t_layer_re.match(k))]
    return {
        "layer_prefix": prefix,
        "layer_map": layer_map,
        "copied": copied,
        "random_init": random_init,
        "missing": missing,
        "unexpected": unexpected,
        "shape_mismatch": shape_mismatch,
        "teacher_shapes": teacher_shapes,
    }


def create_model(
    config: Mapping[str, Any] | None = None,
    task: str | None = None,
    init_from: torch.nn.Module | None = None,
    layer_map: list[int] | None = None,
) -> torch.nn.Module:
    """Build a fresh Hugging Face model from a config dict (random init from the caller's seed).

    Without ``init_from``: ``config`` is a full HF config dict with ``model_type``; ``task`` defaults to
    the head named by its ``architectures`` (else "base").

    With ``init_from`` (an HF model): the config starts as the teacher's and ``config`` overrides it (e.g.
    ``{"num_hidden_layers": 3}``); ``task`` defaults to the teacher's head. Weights are then copied by
    state-dict key: the stack of layers (the ModuleList that is ``num_hidden_layers`` long, e.g.
    ``bert.encoder.layer``)
    maps student layer i to teacher layer ``layer_map[i]`` — default the first N teacher layers ``[0..N-1]``
    (as for RBT3 / TextBrewer's T3 students) — and every other key (embeddings, pooler, head) is copied under
    its own name. Only keys whose shapes match are copied; the rest keep their random init.
    ``model._textbrewer_init_report`` = ``{source: "config" | "initFrom", task, layer_prefix, layer_map, copied: {student_key: teacher_key},
    random_init: [...], missing: [...] (no teacher key), unexpected: [...] (teacher keys unused, outside the layer
    stack), shape_mismatch: [...], teacher_shapes: {student_key: teacher shape}}``; ``init_report`` gives its wire
    form. No random numbers are drawn besides the model's own init.
    """
    _check_task(task)
    config = {} if config is None else config
    if not isinstance(config, Mapping):
        raise ModelLoadError(f"config: expected an object of Hugging Face config keys, got {_short_repr(config)}")
    if layer_map is not None and init_from is None:
        raise ModelLoadError("layerMap: only meaningful with initFrom; pass initFrom (the teacher) or drop layerMap")
    if init_from is not None and not isinstance(init_from, torch.nn.Module):
        raise ModelLoadError(f"initFrom: expected a model, got {type(init_from).__name__}")
    hf_config = _student_config(config, init_from)
    if task is not None:
        chosen = task
    elif init_from is not None:
        chosen = _task_of_model(init_from)
    else:
        chosen = infer_task(hf_config)
    try:
        model = _auto_class(chosen).from_config(hf_config, trust_remote_code=False)
    except ValueError as err:
        raise ModelLoadError(
            f"task: '{chosen}' has no head for model_type '{hf_config.model_type}' in transformers "
            f"({str(err).splitlines()[0]}); use another task (one of {', '.join(TASKS)})"
        ) from err
    if init_from is None:
        report: dict[str, Any] = {
            "layer_prefix": None,
            "layer_map": None,
            "copied": {},
            "random_init": list(model.state_dict().keys()),
            "missing": [],
            "unexpected": [],
            "shape_mismatch": [],
            "teacher_shapes": {},
        }
    else:
        report = _copy_weights(model, init_from, layer_map)
    report["task"] = chosen
    report["source"] = "config" if init_from is None else "initFrom"
    model._textbrewer_init_report = report  # type: ignore[attr-defined]
    return model


# ---------------------------------------------------------------------------------------- init reports


def _mismatch(name: str, checkpoint: list[int] | None, model_state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    own = model_state.get(name)
    return {"name": name, "checkpoint": checkpoint, "model": list(own.shape) if own is not None else None}


def init_report(model: torch.nn.Module) -> dict[str, Any] | None:
    """How the weights of a loaded or created model were filled, in the form the TypeScript ``InitReport`` types.

    ``source``: "checkpoint" (load_model of a folder or state dict), "initFrom" (create_model copying from a
    teacher) or "config" (create_model from a config alone: every weight is new). ``newlyInitialized``: the keys
    holding fresh random values (missing, or re-initialised because the shapes differ), in state-dict order;
    ``missing``, ``unexpected``, ``mismatched`` ({name, checkpoint, model} shapes). None for a TorchScript file, a
    pickled module or a factory without weights, where nothing was matched by name.
    """
    state = model.state_dict()
    load = getattr(model, "_textbrewer_load_report", None)
    if load is not None:
        fresh = set(load["missing_keys"]) | set(load["mismatched_keys"])
        return {
            "source": "checkpoint",
            "task": load["task"],
            "path": load["path"],
            "newlyInitialized": [k for k in state if k in fresh] + sorted(fresh - set(state)),
            "missing": list(load["missing_keys"]),
            "unexpected": list(load["unexpected_keys"]),
            "mismatched": [_mismatch(k, load["checkpoint_shapes"].get(k), state) for k in load["mismatched_keys"]],
        }
    made = getattr(model, "_textbrewer_init_report", None)
    if made is None:
        return None
    report: dict[str, Any] = {
        "source": made["source"],
        "task": made["task"],
        "newlyInitialized": list(made["random_init"]),
        "missing": list(made["missing"]),
        "unexpected": list(made["unexpected"]),
        "mismatched": [_mismatch(k, made["teacher_shapes"].get(k), state) for k in made["shape_mismatch"]],
    }
    if report["source"] == "initFrom":
        report.update(copied=dict(made["copied"]), layerPrefix=made["layer_prefix"], layerMap=made["layer_map"])
    return report


# --------------------------------------------------------------------------------------------- saving


def write_model_files(model: torch.nn.Module, folder: Path) -> None:
    """Write the model's files into an existing folder (no atomic swap; see save_model)."""
    if _is_hf_model(model):
        model.save_pretrained(str(folder), safe_serialization=True)  # type: ignore[operator]
    else:
        # save_model drops duplicate names of shared tensors; load_model accepts that (tied keys).
        _safetensors_save_model(model, str(folder / "model.safetensors"), force_contiguous=True)


def save_model(model: torch.nn.Module, directory: str) -> list[str]:
    """Save ``model`` into ``directory`` atomically and return the names of the files written.

    HF models: ``save_pretrained(safe_serialization=True)`` (config.json + model.safetensors, sharded
    if large). Other modules: their state dict as ``model.safetensors`` (shared tensors stored once).
    The files are written into a hidden sibling folder that is then renamed into place. An existing
    ``directory`` is replaced: its old checkpoint files (config.json, model*.safetensors, pytorch_model*.bin,
    index files) go, any other files in it (e.g. a tokenizer) are carried over into the new folder.
    """
    if not isinstance(model, torch.nn.Module):
        raise ModelSaveError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ModelSaveError(f"directory: '{directory}' exists and is a file; give a folder path")
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelSaveError(f"directory: cannot create parent folder '{parent}' ({err})") from err
    token = uuid.uuid4().hex[:12]
    tmp = parent / f".{target.name}.tmp-{token}"
    old = parent / f".{target.name}.old-{token}"
    written: list[str] = []
    carried: list[str] = []
    try:
        tmp.mkdir()
        write_model_files(model, tmp)
        written = sorted(entry.name for entry in tmp.iterdir())
        if target.exists():
            for entry in sorted(target.iterdir()):
                if entry.name not in written and not _CHECKPOINT_FILE_RE.match(entry.name):
                    os.rename(entry, tmp / entry.name)
                    carried.append(entry.name)
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except OSError:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except Exception as err:
        if tmp.exists():
            # Give the carried-over files back to the old folder before dropping the temporary one.
            for name in carried:
                if (tmp / name).exists() and target.is_dir() and not (target / name).exists():
                    os.rename(tmp / name, target / name)
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, ModelSaveError):
            raise
        raise ModelSaveError(f"directory: saving into '{directory}' failed ({type(err).__name__}: {err})") from err
    return written


# ------------------------------------------------------------------------------------------- counting


def num_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameter elements; a tensor shared by modules (tied weights) counts once."""
    seen: set[Any] = set()
    total = 0
    for param in model.parameters():
        if trainable_only and not param.requires_grad:
            continue
        if param.device.type == "meta" or param.numel() == 0:
            key: Any = ("id", id(param))
        else:
            key = (param.device, param.data_ptr(), tuple(param.shape), param.dtype)
        if key in seen:
            continue
        seen.add(key)
        total += param.numel()
    return total
