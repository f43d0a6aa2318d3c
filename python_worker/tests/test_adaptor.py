"""apply_adaptor / needs_outputs on real Hugging Face outputs of a tiny random BERT (CPU)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from textbrewer_worker.training.adaptor import (
    AdaptorKeyError,
    AdaptorSpecError,
    apply_adaptor,
    describe_selector,
    load_python_adaptor,
    needs_outputs,
)

NUM_LAYERS = 2


def out_path(*path: Any) -> dict[str, Any]:
    return {"from": "out", "path": list(path)}


def batch_path(*path: Any) -> dict[str, Any]:
    return {"from": "batch", "path": list(path)}


def select(**keys: Any) -> dict[str, Any]:
    return {"kind": "select", "keys": keys}


@pytest.fixture(scope="module")
def model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
    )
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    attention_mask = torch.ones(2, 7, dtype=torch.long)
    attention_mask[1, 5:] = 0
    return {
        "input_ids": torch.randint(0, 100, (2, 7), generator=g),
        "attention_mask": attention_mask,
        "labels": torch.tensor([0, 2]),
    }


@pytest.fixture(scope="module")
def outputs(model: BertForSequenceClassification, batch: dict[str, torch.Tensor]) -> Any:
    with torch.no_grad():
        return model(**batch, output_hidden_states=True, output_attentions=True)


@pytest.fixture(scope="module")
def plain_outputs(model: BertForSequenceClassification, batch: dict[str, torch.Tensor]) -> Any:
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        return model(**inputs)


def test_design_style_adaptor(batch: dict[str, torch.Tensor], outputs: Any) -> None:
    spec = select(
        logits=out_path("logits"),
        hidden=out_path("hidden_states"),
        attention=out_path("attentions"),
        inputs_mask=batch_path("attention_mask"),
        labels=batch_path("labels"),
        losses=out_path("loss"),
    )
    result = apply_adaptor(spec, batch, outputs)
    assert set(result) == {"logits", "hidden", "attention", "inputs_mask", "labels", "losses"}
    assert result["logits"] is outputs.logits
    assert result["logits"].shape == (2, 3)
    assert len(result["hidden"]) == NUM_LAYERS + 1
    assert result["hidden"][0].shape == (2, 7, 32)
    assert len(result["attention"]) == NUM_LAYERS
    assert result["attention"][0].shape == (2, 4, 7, 7)
    assert result["inputs_mask"] is batch["attention_mask"]
    assert result["losses"].dim() == 0


def test_indices_slices_and_lists(batch: dict[str, torch.Tensor], outputs: Any) -> None:
    spec = select(
        # ModelOutput by position, as out[1] in Hugging Face: (loss, logits, hidden_states, attentions)
        logits=out_path(1),
        hidden={"list": [out_path("hidden_states", 0), out_path("hidden_states", -1)]},
        attention=out_path("attentions", {"slice": [1, None, None]}),
        labels=out_path("hidden_states", {"slice": [None, None, -1]}),
    )
    result = apply_adaptor(spec, batch, outputs)
    assert result["logits"] is outputs.logits
    assert result["hidden"][0] is outputs.hidden_states[0]
    assert result["hidden"][1] is outputs.hidden_states[NUM_LAYERS]
    assert list(result["attention"]) == list(outputs.attentions[1:])
    assert list(result["labels"]) == list(outputs.hidden_states[::-1])


def test_tuple_outputs_and_positional_batches(outputs: Any) -> None:
    as_tuple = outputs.to_tuple()
    batch_list = [torch.zeros(2, 7), torch.ones(2, 7)]
    spec = select(logits=out_path(1), hidden=out_path(2, {"slice": [1, 3, None]}), inputs_mask=batch_path(-1))
    result = apply_adaptor(spec, batch_list, as_tuple)
    assert result["logits"] is outputs.logits
    assert len(result["hidden"]) == 2
    assert result["inputs_mask"] is batch_list[1]


def test_plain_dict_outputs() -> None:
    outputs = {"logits": torch.zeros(2, 3), "extra": {"layers": [torch.ones(1), torch.ones(2)]}}
    result = apply_adaptor(select(logits=out_path("logits"), hidden=out_path("extra", "layers")), {}, outputs)
    assert result["logits"] is outputs["logits"]
    assert result["hidden"] is outputs["extra"]["layers"]


def test_hidden_states_not_requested(batch: dict[str, torch.Tensor], plain_outputs: Any) -> None:
    spec = select(hidden=out_path("hidden_states"))
    with pytest.raises(AdaptorKeyError) as info:
        apply_adaptor(spec, batch, plain_outputs)
    message = str(info.value)
    assert "'hidden'" in message
    assert "out.hidden_states" in message
    assert "output_hidden_states=True" in message

    spec = select(attention=out_path("attentions", -1))
    with pytest.raises(AdaptorKeyError, match=r"output_attentions=True"):
        apply_adaptor(spec, batch, plain_outputs)


def test_missing_names_list_what_is_there(batch: dict[str, torch.Tensor], outputs: Any) -> None:
    with pytest.raises(AdaptorKeyError) as info:
        apply_adaptor(select(inputs_mask=batch_path("input_mask")), batch, outputs)
    message = str(info.value)
    assert "'inputs_mask'" in message and "batch" in message and "'input_mask'" in message
    assert "attention_mask" in message and "input_ids" in message

    with pytest.raises(AdaptorKeyError) as info:
        apply_adaptor(select(logits=out_path("start_logits")), batch, outputs)
    message = str(info.value)
    assert "out has no 'start_logits'" in message
    assert "logits" in message and "hidden_states" in message

    with pytest.raises(AdaptorKeyError, match=r"out\.hidden_states\[9\] is out of range"):
        apply_adaptor(select(hidden=out_path("hidden_states", 9)), batch, outputs)

    tensor_attribute = r"out\.logits has no attribute 'scores'.*tensor of shape \(2, 3\)"
    with pytest.raises(AdaptorKeyError, match=tensor_attribute):
        apply_adaptor(select(logits=out_path("logits", "scores")), batch, outputs)

    with pytest.raises(AdaptorKeyError, match=r"tuple of length"):
        apply_adaptor(select(hidden=out_path("hidden_states", "first")), batch, outputs)


def test_methods_are_not_values(batch: dict[str, torch.Tensor], outputs: Any) -> None:
    with pytest.raises(AdaptorKeyError, match=r"out\.logits\.softmax is a method"):
        apply_adaptor(select(logits=out_path("logits", "softmax")), batch, outputs)


def test_malformed_specs() -> None:
    with pytest.raises(AdaptorSpecError, match=r"did you mean inputs_mask"):
        apply_adaptor(select(input_mask=batch_path("attention_mask")), {}, {})
    with pytest.raises(AdaptorSpecError):
        apply_adaptor({"kind": "eval", "code": "1+1"}, {}, {})
    with pytest.raises(AdaptorSpecError):
        apply_adaptor(select(logits={"from": "out", "path": [{"slice": [0, 1, 0]}]}), {}, {})
    with pytest.raises(AdaptorSpecError):
        apply_adaptor(select(logits={"from": "elsewhere", "path": []}), {}, {})


def test_needs_outputs() -> None:
    assert needs_outputs(select(logits=out_path("logits"), inputs_mask=batch_path("attention_mask"))) == set()
    from_first = {"slice": [1, None, None]}
    assert needs_outputs(select(hidden=out_path("hidden_states", from_first))) == {"hidden_states"}
    assert needs_outputs(select(attention={"list": [out_path("attentions", 0)]})) == {"attentions"}
    assert needs_outputs(select(hidden=out_path("encoder_hidden_states"))) == {"hidden_states"}
    assert needs_outputs(select(hidden=out_path(2))) == {"hidden_states", "attentions"}
    assert needs_outputs({"kind": "python", "ref": "a.py:f"}) == {"hidden_states", "attentions"}


def test_describe_selector() -> None:
    from_first = {"slice": [1, None, None]}
    sel = {"list": [out_path("hidden_states", from_first), out_path("attentions", -1), batch_path(0)]}
    assert describe_selector(sel) == "[out.hidden_states.slice(1), out.attentions.at(-1), batch[0]]"


def write_adaptor_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "my_adaptors.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_python_adaptor(tmp_path: Path, batch: dict[str, torch.Tensor], outputs: Any) -> None:
    path = write_adaptor_file(
        tmp_path,
        """
        CALLS = {"imports": 0}
        CALLS["imports"] += 1

        def adaptor(batch, out):
            return {
                "logits": out.logits / 2,
                "hidden": list(out.hidden_states[1:]),
                "inputs_mask": batch["attention_mask"].bool(),
                "labels": None,
            }
        """,
    )
    spec = {"kind": "python", "ref": f"{path}:adaptor"}
    result = apply_adaptor(spec, batch, outputs)
    assert set(result) == {"logits", "hidden", "inputs_mask"}
    torch.testing.assert_close(result["logits"], outputs.logits / 2)
    assert len(result["hidden"]) == NUM_LAYERS
    assert result["inputs_mask"].dtype == torch.bool

    apply_adaptor(spec, batch, outputs)
    module_globals = load_python_adaptor(f"{path}:adaptor").__globals__
    assert module_globals["CALLS"]["imports"] == 1  # imported once, cached by path


def test_python_adaptor_errors(tmp_path: Path, batch: dict[str, torch.Tensor], outputs: Any) -> None:
    path = write_adaptor_file(
        tmp_path,
        """
        def typo(batch, out):
            return {"logits": out.logits, "input_mask": batch["attention_mask"]}

        def not_a_dict(batch, out):
            return [out.logits]
        """,
    )
    with pytest.raises(AdaptorKeyError) as info:
        apply_adaptor({"kind": "python", "ref": f"{path}:typo"}, batch, outputs)
    assert "'input_mask'" in str(info.value) and "did you mean inputs_mask" in str(info.value)

    with pytest.raises(AdaptorKeyError, match=r"must return a dict"):
        apply_adaptor({"kind": "python", "ref": f"{path}:not_a_dict"}, batch, outputs)

    with pytest.raises(AdaptorSpecError, match=r"no function 'missing'; callables there: not_a_dict, typo"):
        apply_adaptor({"kind": "python", "ref": f"{path}:missing"}, batch, outputs)

    with pytest.raises(AdaptorSpecError, match=r"does not exist"):
        apply_adaptor({"kind": "python", "ref": f"{tmp_path / 'absent.py'}:adaptor"}, batch, outputs)

    with pytest.raises(AdaptorSpecError, match=r"must look like"):
        load_python_adaptor("my_adaptors:adaptor")
