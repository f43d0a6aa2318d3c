"""Losses the student's adaptor returns (`losses`): hard labels in a distiller, the whole objective of BasicTrainer."""

from __future__ import annotations

from typing import Any

from .base import Tensor, Term, TermInputs, term

HARD_LABEL_LOG_NAME = "unweighted_hard_label_loss"


def sum_of_means(losses: list[Tensor]) -> Tensor:
    total: Tensor | float = 0.0
    for loss in losses:
        total = total + loss.mean()
    return total  # type: ignore[return-value]


@term("hard_label")
class HardLabelTerm(Term):
    """The sum of the means of the student's `losses`, times the step's hardWeight; skipped when there are none."""

    def __call__(self, inputs: TermInputs) -> tuple[Tensor | None, dict[str, Tensor]]:
        if "losses" not in inputs.results_S:
            return None, {}
        hard = sum_of_means(inputs.results_S["losses"])
        return hard * float(inputs.args["hardWeight"]), {HARD_LABEL_LOG_NAME: hard}


@term("supervised")
class SupervisedTerm(Term):
    """BasicTrainer: the sum of the means of the student's `losses`, unweighted and not reported as a term."""

    def __call__(self, inputs: TermInputs) -> tuple[Tensor | None, dict[str, Any]]:
        if "losses" not in inputs.results_S:
            raise KeyError(
                "losses: BasicTrainer needs the adaptor to return 'losses' (e.g. out.loss with labels in the batch)"
            )
        return sum_of_means(inputs.results_S["losses"]), {}
