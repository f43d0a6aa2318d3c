"""The tasks a model can be loaded or created for (the head on top), and how a config or a model names its task."""

from __future__ import annotations

from typing import Any

import torch

from .errors import ModelLoadError

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


def _auto_class(task: str) -> Any:
    import transformers

    return getattr(transformers, _AUTO_CLASS_NAMES[task])


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise ModelLoadError(f"task: '{task}' is not a known task; use one of {', '.join(TASKS)}")


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
