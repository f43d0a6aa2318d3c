"""Batch checks: masks match input_ids in shape and hold finite values; the error names every tensor."""

from __future__ import annotations

import pytest
import torch

from textbrewer_worker.batch_check import BatchError, check_batch


def batch(**overrides: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {
        "input_ids": torch.ones(4, 8, dtype=torch.int64),
        "attention_mask": torch.ones(4, 8, dtype=torch.int64),
        "labels": torch.zeros(4, dtype=torch.int64),
    }
    out.update(overrides)
    return out


def test_a_well_formed_batch_passes() -> None:
    check_batch(batch())
    check_batch(batch(attention_mask=torch.ones(4, 8), token_type_ids=torch.zeros(4, 8, dtype=torch.int64)))
    check_batch(batch(attention_mask=torch.ones(4, 1, 8, 8)))  # an extended (4-D) attention mask
    check_batch([torch.ones(4, 8), torch.ones(4, 6)])  # positional: no names, nothing to check
    check_batch(torch.ones(2, 3))


def test_a_mask_of_another_shape_is_named_with_every_tensor() -> None:
    with pytest.raises(BatchError) as info:
        check_batch(batch(attention_mask=torch.ones(4, 6, dtype=torch.int64)))
    assert str(info.value) == (
        "batch.attention_mask has shape [4, 6] but input_ids has [4, 8]; masks must match it. "
        "The batch: input_ids [4, 8] int64, attention_mask [4, 6] int64, labels [4] int64"
    )


@pytest.mark.parametrize("name", ["token_type_ids", "logits_mask", "special_tokens_mask"])
def test_every_mask_key_is_checked(name: str) -> None:
    with pytest.raises(BatchError, match=rf"^batch\.{name} has shape \[4, 7\]"):
        check_batch(batch(**{name: torch.ones(4, 7, dtype=torch.int64)}))


def test_an_extended_mask_must_agree_on_batch_and_length() -> None:
    with pytest.raises(BatchError, match=r"attention_mask has shape \[4, 1, 6, 6\] but input_ids has \[4, 8\]"):
        check_batch(batch(attention_mask=torch.ones(4, 1, 6, 6)))
    with pytest.raises(BatchError, match=r"attention_mask has shape \[8\]"):
        check_batch(batch(attention_mask=torch.ones(8)))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_float_mask_with_a_non_finite_value(value: float) -> None:
    mask = torch.ones(4, 8)
    mask[1, 3] = value
    expected = r"^batch\.attention_mask holds 1 non-finite value\(s\) \(NaN or Inf\).*attention_mask \[4, 8\] float32"
    with pytest.raises(BatchError, match=expected):
        check_batch(batch(attention_mask=mask))


def test_each_half_of_a_teacher_student_batch() -> None:
    good = batch()
    check_batch({"teacher": good, "student": good})
    with pytest.raises(BatchError, match=r"^batch\.student\.attention_mask has shape \[4, 5\].*The batch: teacher \{"):
        check_batch({"teacher": good, "student": batch(attention_mask=torch.ones(4, 5))})


def test_masks_without_input_ids_are_still_checked_for_finite_values() -> None:
    check_batch({"inputs_embeds": torch.ones(2, 3, 4), "attention_mask": torch.ones(2, 3)})
    with pytest.raises(BatchError, match="non-finite"):
        check_batch({"inputs_embeds": torch.ones(2, 3, 4), "attention_mask": torch.full((2, 3), float("nan"))})


def test_a_float16_mask_whose_sum_overflows_is_not_refused() -> None:
    big = torch.ones(512, 512, dtype=torch.int64)
    assert torch.ones(512, 512, dtype=torch.float16).sum().isinf()
    check_batch({"input_ids": big, "attention_mask": torch.ones(512, 512, dtype=torch.float16)})
