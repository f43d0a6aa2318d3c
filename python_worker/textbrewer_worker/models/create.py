"""Fresh models from a config, optionally initialised from a teacher's weights (layer map)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .errors import ModelLoadError, _listing, _short_repr
from .hf_config import _config_from_dict
from .tasks import TASKS, _auto_class, _check_task, _task_of_model, infer_task


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
    """The name of the stack of layers student and teacher of the same class share, or None."""
    stacks = _layer_stacks(student, teacher, lambda key: key)
    return stacks[0] if stacks is not None else None


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


def _base_prefix(model: torch.nn.Module) -> str:
    """The key prefix of a model's base model ("bert." for a BertForSequenceClassification), "" for a bare one.

    A Hugging Face model with a head holds its base model under ``base_model_prefix``; the bare base model
    (``BertModel``) has the same ``base_model_prefix`` but no such attribute, so its keys carry no prefix.
    """
    name = getattr(model, "base_model_prefix", "")
    base = getattr(model, name, None) if isinstance(name, str) and name else None
    return f"{name}." if isinstance(base, torch.nn.Module) and base is not model else ""


def _key_translator(student: torch.nn.Module, teacher: torch.nn.Module) -> Callable[[str], str]:
    """Maps a student key to the teacher key of the same weight across the base-model prefix.

    A head model's base keys (``bert.encoder...``) and a bare base model's keys (``encoder...``) name the same weights;
    keys outside the student's base model (its head) keep their own name.
    """
    s_pre, t_pre = _base_prefix(student), _base_prefix(teacher)
    if s_pre == t_pre:
        return lambda key: key
    if s_pre:
        return lambda key: t_pre + key[len(s_pre) :] if key.startswith(s_pre) else key
    return lambda key: t_pre + key


def _layer_stacks(
    student: torch.nn.Module, teacher: torch.nn.Module, to_teacher: Callable[[str], str]
) -> tuple[str, str] | None:
    """The stack of transformer layers common to student and teacher: (student name, teacher name), or None."""
    s_lists = _layer_lists(student, _num_layers(getattr(student, "config", None)))
    t_lists = _layer_lists(teacher, _num_layers(getattr(teacher, "config", None)))
    common = [name for name in s_lists if to_teacher(name) in t_lists]
    if not common:
        return None
    t_params = dict(teacher.named_modules())

    def size(name: str) -> int:
        return sum(p.numel() for p in t_params[to_teacher(name)].parameters())

    best = max(common, key=size)
    return best, to_teacher(best)


def _nothing_copied(student: torch.nn.Module, teacher: torch.nn.Module, s_keys: list[str], t_keys: list[str]) -> str:
    return (
        f"initFrom: no weight of the teacher ({type(teacher).__name__}) fits the student "
        f"({type(student).__name__}): no student key has a teacher key of the same name and shape "
        f"(student keys: {_listing(s_keys)}; teacher keys: {_listing(t_keys)}); give a teacher of the same "
        "architecture and hidden size, or build the student from a config alone (createModel({ config }))"
    )


def _copy_weights(student: torch.nn.Module, teacher: torch.nn.Module, layer_map: list[int] | None) -> dict[str, Any]:
    to_teacher = _key_translator(student, teacher)
    stacks = _layer_stacks(student, teacher, to_teacher)
    prefix, t_prefix = stacks if stacks is not None else (None, None)
    s_state = student.state_dict()
    t_state = teacher.state_dict()
    if prefix is not None and t_prefix is not None:
        modules = dict(student.named_modules())
        t_modules = dict(teacher.named_modules())
        n_student = len(modules[prefix])  # type: ignore[arg-type]
        n_teacher = len(t_modules[t_prefix])  # type: ignore[arg-type]
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
            source_key = to_teacher(key)
            match = layer_re.match(key) if layer_re is not None else None
            if match is not None and layer_map is not None:
                source_key = f"{t_prefix}.{layer_map[int(match.group(1))]}.{match.group(2)}"
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
    t_layer_re = re.compile(rf"^{re.escape(t_prefix)}\.\d+\.") if t_prefix is not None else None
    unexpected = [k for k in t_state if k not in used and not (t_layer_re is not None and t_layer_re.match(k))]
    if not copied:
        raise ModelLoadError(_nothing_copied(student, teacher, list(s_state), list(t_state)))
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
