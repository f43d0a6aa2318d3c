"""The registry of term kinds: built-in kinds by name, a registered kind from a file, and the refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from textbrewer_worker.terms import TERMS, Term, TermInputs, build_terms, term, unregister_term
from textbrewer_worker.training.objective import Objective

CPU = torch.device("cpu")


def test_builtin_kinds_are_registered() -> None:
    assert {"kd", "hard_label", "supervised", "match", "emd"} <= set(TERMS)


def test_a_kind_registered_with_the_decorator_is_summed_in_plan_order_with_its_weight() -> None:
    @term("test_l1")
    class L1(Term):
        def __call__(self, inputs: TermInputs) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
            value = inputs.results_S["logits"][0].abs().mean()
            return value * self.spec["weight"], {"unweighted_test_l1": value}

    try:
        logits = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
        objective = Objective(
            [
                {"kind": "registered", "name": "test_l1", "weight": 3.0, "options": {}},
                {"kind": "hard_label", "weight": 1.0, "weightScheduler": "none"},
            ],
            CPU,
            [],
        )
        losses = [torch.tensor([0.25, 0.75], dtype=torch.float64)]
        total, terms = objective.loss(objective.inputs({"logits": [logits], "losses": losses}, [], {"hardWeight": 2.0}))
        assert list(terms) == ["unweighted_test_l1", "unweighted_hard_label_loss"]
        assert float(terms["unweighted_test_l1"]) == 0.875
        assert float(total) == 0.875 * 3.0 + 0.5 * 2.0
    finally:
        unregister_term("test_l1")


def test_a_registered_kind_is_imported_from_its_python_file(tmp_path: Path) -> None:
    file = tmp_path / "my_term.py"
    file.write_text(
        "from textbrewer_worker.terms import Term, term\n\n\n@term('file_term')\nclass FileTerm(Term):\n    pass\n"
    )
    try:
        [built] = build_terms([{"kind": "registered", "name": "file_term", "python": f"{file}:FileTerm"}], CPU)
        assert type(built).__name__ == "FileTerm" and built.kind == "file_term"
    finally:
        unregister_term("file_term")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"kind": "kdd"},
            r"terms\[0\]\.kind: 'kdd' is not a term kind; use one of causal_lm_kd, emd, hard_label, kd, match, supervised, or",
        ),
        (
            {"kind": "registered", "name": "kd"},
            r"terms\[0\]\.name: 'kd' has its own schema in the plan; write \{kind: 'kd'\}",
        ),
        ({"kind": "registered", "name": "absent"}, r"terms\[0\]\.name: no term kind 'absent' is registered"),
    ],
)
def test_refusals_name_the_field_and_the_fix(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_terms([spec], CPU)


def test_a_python_reference_that_is_not_the_registered_class_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "not_a_term.py"
    file.write_text("def helper():\n    return 1\n")
    with pytest.raises(ValueError, match=r"terms\[0\]\.python: '.*not_a_term\.py:helper' is not a Term subclass"):
        build_terms([{"kind": "registered", "name": "helper_term", "python": f"{file}:helper"}], CPU)
