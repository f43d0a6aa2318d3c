"""Preparing models before training.

    seed {seed}                             seeds Python, numpy and torch, so that what is created next (a new
                                            classification head of load_model, a create_model) is reproducible
    set_trainable {model, pattern, trainable}
                                            sets requires_grad on every parameter whose name matches the regex

A frozen parameter gets no gradient and joins no optimizer group (optim.parameter_groups skips it), so freezing e.g.
the word embeddings of a small BERT also saves most of the optimizer's work per step."""

from __future__ import annotations

import re

from .models import num_parameters
from .wire.ops import WorkerState, op
from .wire.ops_types import SeedArgs, SetTrainableArgs, SetTrainableResult


@op("seed")
def seed(state: WorkerState, args: SeedArgs) -> None:
    from .training.session import seed_everything

    seed_everything(args["seed"])


@op("set_trainable")
def set_trainable(state: WorkerState, args: SetTrainableArgs) -> SetTrainableResult:
    model = state.model(args)
    pattern = args["pattern"]
    trainable = args["trainable"]
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern: not a valid regular expression ({exc})") from exc
    matched = [name for name, _ in model.named_parameters() if regex.search(name)]
    if not matched:
        names = [name for name, _ in model.named_parameters()]
        raise ValueError(
            f"pattern: '{pattern}' matches no parameter of {type(model).__name__} (e.g. {', '.join(names[:4])})"
        )
    for name, param in model.named_parameters():
        if regex.search(name):
            param.requires_grad_(trainable)
    return {
        "matched": matched,
        "trainableParameters": num_parameters(model, trainable_only=True),
        "parameters": num_parameters(model),
    }
