"""Model handles: load_model / create_model / save_model / num_parameters on a tiny random BERT (CPU)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from safetensors.torch import save_model as st_save_model
from torch import nn
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertLMHeadModel,
    BertModel,
)

from textbrewer_worker.models import (
    TASKS,
    ModelLoadError,
    ModelSaveError,
    create_model,
    init_report,
    load_model,
    num_parameters,
    save_model,
)

EXPECTED_CLASS = {
    "sequence-classification": BertForSequenceClassification,
    "token-classification": BertForTokenClassification,
    "question-answering": BertForQuestionAnswering,
    "masked-lm": BertForMaskedLM,
    "causal-lm": BertLMHeadModel,
    "base": BertModel,
}

INPUT_IDS = torch.tensor([[1, 5, 7, 9, 2, 0], [1, 42, 3, 2, 0, 0]])
ATTENTION_MASK = (INPUT_IDS != 0).long()

FACTORY_SOURCE = """
import torch
from torch import nn

BUILDS = []


class TwoLayer(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.inp = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)
        self.out.weight = self.inp.weight  # tied

    def forward(self, x):
        return self.out(torch.relu(self.inp(x)))


def build(hidden=4):
    BUILDS.append(hidden)
    return TwoLayer(hidden)


def not_a_module():
    return 42
"""


TINY_BERT_CONFIG = {
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "num_labels": 3,
}


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-initialised 4-layer BERT sequence classifier saved with save_pretrained (safetensors)."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**TINY_BERT_CONFIG))
    folder = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def logits(model: nn.Module) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK).logits


def bert_config_dict(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


@pytest.fixture(scope="module")
def teacher(tiny_bert_dir: Path) -> BertForSequenceClassification:
    return load_model(str(tiny_bert_dir))


@pytest.fixture
def factory_file(tmp_path: Path) -> Path:
    file = tmp_path / "my_factory.py"
    file.write_text(FACTORY_SOURCE)
    return file


# ------------------------------------------------------------------------------------------ HF folders


@pytest.mark.parametrize("task", TASKS)
def test_hf_folder_loads_for_every_task(tiny_bert_dir: Path, task: str) -> None:
    # BertLMHeadModel wants is_decoder; BERT's QA head has num_labels outputs, so it needs 2 (start, end).
    overrides = {"causal-lm": {"is_decoder": True}, "question-answering": {"num_labels": 2}}.get(task)
    model = load_model(str(tiny_bert_dir), task=task, config=overrides)
    assert type(model) is EXPECTED_CLASS[task]
    assert not model.training
    assert model._textbrewer_load_report["task"] == task
    with torch.no_grad():
        out = model(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK)
    assert out[0].shape[0] == 2


def test_hf_folder_task_defaults_to_saved_architecture(tiny_bert_dir: Path) -> None:
    model = load_model(str(tiny_bert_dir))
    assert type(model) is BertForSequenceClassification
    assert model._textbrewer_load_report == {
        "task": "sequence-classification",
        "path": str(tiny_bert_dir),
        "missing_keys": [],
        "unexpected_keys": [],
        "mismatched_keys": [],
        "checkpoint_shapes": {},
    }
    assert logits(model).shape == (2, 3)


def test_hf_folder_config_overrides_reinitialise_a_resized_head(tiny_bert_dir: Path) -> None:
    model = load_model(str(tiny_bert_dir), task="sequence-classification", config={"num_labels": 5})
    assert model.config.num_labels == 5 and logits(model).shape == (2, 5)
    assert sorted(model._textbrewer_load_report["mismatched_keys"]) == [
        "classifier.bias",
        "classifier.weight",
    ]


def test_hf_folder_with_pytorch_model_bin(tiny_bert_dir: Path, tmp_path: Path, teacher: nn.Module) -> None:
    folder = tmp_path / "bin_ckpt"
    teacher.save_pretrained(str(folder), safe_serialization=False)
    assert (folder / "pytorch_model.bin").is_file()
    assert torch.equal(logits(load_model(str(folder))), logits(teacher))


def test_sharded_hf_folder(tmp_path: Path, teacher: nn.Module) -> None:
    folder = tmp_path / "sharded"
    teacher.save_pretrained(str(folder), safe_serialization=True, max_shard_size="50KB")
    assert (folder / "model.safetensors.index.json").is_file()
    assert torch.equal(logits(load_model(str(folder))), logits(teacher))


# ---------------------------------------------------------------------------------------- init reports


@pytest.fixture(scope="module")
def headless_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny BERT saved without a classification head: as a base model and as a masked LM."""
    config = BertConfig(**{k: v for k, v in TINY_BERT_CONFIG.items() if k != "num_labels"})
    folders = {}
    for name, cls in (("base", BertModel), ("masked-lm", BertForMaskedLM)):
        torch.manual_seed(4)
        folders[name] = tmp_path_factory.mktemp(f"tiny_{name}")
        cls(config).save_pretrained(str(folders[name]), safe_serialization=True)
    return folders


def test_init_report_names_a_new_classification_head(headless_dirs: dict[str, Path]) -> None:
    model = load_model(str(headless_dirs["base"]), task="sequence-classification")
    report = init_report(model)
    assert report == {
        "source": "checkpoint",
        "task": "sequence-classification",
        "path": str(headless_dirs["base"]),
        "newlyInitialized": ["classifier.weight", "classifier.bias"],
        "missing": ["classifier.bias", "classifier.weight"],
        "unexpected": [],
        "mismatched": [],
    }
    mlm = init_report(load_model(str(headless_dirs["masked-lm"]), task="sequence-classification"))
    assert mlm is not None
    # BertForMaskedLM has no pooler: it is new as well; its LM head is left over
    assert mlm["newlyInitialized"] == [
        "bert.pooler.dense.weight",
        "bert.pooler.dense.bias",
        "classifier.weight",
        "classifier.bias",
    ]
    assert "cls.predictions.transform.dense.weight" in mlm["unexpected"]
    same_head = init_report(load_model(str(headless_dirs["masked-lm"]), task="masked-lm"))
    assert same_head is not None and same_head["newlyInitialized"] == [] and same_head["unexpected"] == []


def test_init_report_gives_the_shapes_of_a_resized_head(tiny_bert_dir: Path) -> None:
    report = init_report(load_model(str(tiny_bert_dir), task="sequence-classification", config={"num_labels": 5}))
    assert report is not None
    assert report["newlyInitialized"] == ["classifier.weight", "classifier.bias"]
    assert sorted(report["mismatched"], key=lambda m: m["name"]) == [
        {"name": "classifier.bias", "checkpoint": [3], "model": [5]},
        {"name": "classifier.weight", "checkpoint": [3, 32], "model": [5, 32]},
    ]


def test_init_report_of_strict_and_unmatched_loads(tiny_bert_dir: Path, tmp_path: Path, teacher: nn.Module) -> None:
    file = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in teacher.state_dict().items()}, str(file))
    strict = init_report(load_model(str(file), config=str(tiny_bert_dir)))
    assert strict == {
        "source": "checkpoint",
        "task": "sequence-classification",
        "path": str(file),
        "newlyInitialized": [],
        "missing": [],
        "unexpected": [],
        "mismatched": [],
    }
    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(scripted))
    assert init_report(load_model(str(scripted))) is None
    factory = tmp_path / "plain_factory.py"
    factory.write_text("import torch\n\ndef build():\n    return torch.nn.Linear(2, 2)\n")
    assert init_report(load_model(factory=f"{factory}:build")) is None


def test_init_report_of_create_model(teacher: BertForSequenceClassification) -> None:
    student = create_model({"num_hidden_layers": 2, "num_labels": 2}, init_from=teacher, layer_map=[1, 3])
    report = init_report(student)
    assert report is not None and report["source"] == "initFrom"
    assert report["newlyInitialized"] == ["classifier.weight", "classifier.bias"]
    assert report["mismatched"] == [
        {"name": "classifier.weight", "checkpoint": [3, 32], "model": [2, 32]},
        {"name": "classifier.bias", "checkpoint": [3], "model": [2]},
    ]
    assert report["copied"]["bert.encoder.layer.1.output.dense.weight"] == "bert.encoder.layer.3.output.dense.weight"
    assert report["layerPrefix"] == "bert.encoder.layer" and report["layerMap"] == [1, 3]
    assert report["missing"] == [] and report["unexpected"] == []  # unmapped teacher layers are not "unexpected"
    scratch = create_model({**TINY_BERT_CONFIG, "model_type": "bert"})
    from_scratch = init_report(scratch)
    assert from_scratch is not None and from_scratch["source"] == "config" and "copied" not in from_scratch
    assert from_scratch["newlyInitialized"] == list(scratch.state_dict())


def test_init_report_counts_a_weight_tied_to_a_copy_as_copied(teacher: BertForSequenceClassification) -> None:
    student = create_model({"num_hidden_layers": 1}, task="masked-lm", init_from=teacher)
    report = init_report(student)
    assert report is not None
    # the decoder shares the (copied) word embeddings: not new, and equal to the teacher's
    assert "cls.predictions.decoder.weight" not in report["newlyInitialized"]
    assert torch.equal(student.cls.predictions.decoder.weight, teacher.bert.embeddings.word_embeddings.weight)
    assert "cls.predictions.transform.dense.weight" in report["newlyInitialized"]
    assert report["unexpected"] == [
        "bert.pooler.dense.weight",
        "bert.pooler.dense.bias",
        "classifier.weight",
        "classifier.bias",
    ]


# ----------------------------------------------------------------------------------------- state dicts


def test_safetensors_state_dict_with_config_dict(tiny_bert_dir: Path, tmp_path: Path, teacher: nn.Module) -> None:
    file = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in teacher.state_dict().items()}, str(file))
    model = load_model(str(file), config=bert_config_dict(tiny_bert_dir), task="sequence-classification")
    assert type(model) is BertForSequenceClassification
    assert torch.equal(logits(model), logits(teacher))
    # architectures in the config dict pick the head when task is left out
    assert type(load_model(str(file), config=bert_config_dict(tiny_bert_dir))) is BertForSequenceClassification


def test_pt_state_dict_with_config_path(tiny_bert_dir: Path, tmp_path: Path, teacher: nn.Module) -> None:
    file = tmp_path / "gs100.pkl"  # TextBrewer's checkpoint naming
    torch.save(teacher.state_dict(), file)
    for config in (str(tiny_bert_dir / "config.json"), str(tiny_bert_dir)):
        model = load_model(str(file), config=config, task="sequence-classification")
        assert torch.equal(logits(model), logits(teacher))
    model = load_model(str(file), config=str(tiny_bert_dir), format="pt")
    assert torch.equal(logits(model), logits(teacher))


def test_state_dict_with_tied_weights_saved_once(tiny_bert_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(1)
    mlm = BertForMaskedLM(BertConfig.from_pretrained(str(tiny_bert_dir)))
    file = tmp_path / "mlm.safetensors"
    st_save_model(mlm, str(file))  # drops the duplicate name of the tied decoder weight
    model = load_model(str(file), config=str(tiny_bert_dir), task="masked-lm")
    assert torch.equal(logits(model), logits(mlm))


def test_weights_only_refuses_pickled_objects(tmp_path: Path) -> None:
    torch.manual_seed(2)
    module = nn.Sequential(nn.Linear(3, 2))
    file = tmp_path / "whole_module.pt"
    torch.save(module, file)
    with pytest.raises(ModelLoadError, match=r"path: .*whole_module\.pt.*weightsOnly: false.*trust"):
        load_model(str(file))
    loaded = load_model(str(file), weights_only=False)
    x = torch.randn(4, 3)
    assert type(loaded) is nn.Sequential and torch.equal(loaded(x), module(x))


def test_weights_only_refuses_a_dict_with_a_custom_object(tmp_path: Path, tiny_bert_dir: Path) -> None:
    file = tmp_path / "with_object.bin"
    torch.save({"w": torch.zeros(2), "meta": nn.ReLU()}, file)
    with pytest.raises(ModelLoadError, match="weightsOnly: false"):
        load_model(str(file), config=str(tiny_bert_dir))
    with pytest.raises(ModelLoadError, match=r"not a state dict: entries meta are not tensors"):
        load_model(str(file), config=str(tiny_bert_dir), weights_only=False)


def test_weights_only_refuses_pickled_objects_in_an_hf_folder(tmp_path: Path, teacher: nn.Module) -> None:
    folder = tmp_path / "bin_with_object"
    teacher.save_pretrained(str(folder), safe_serialization=False)
    state = dict(teacher.state_dict())
    state["extra"] = nn.ReLU()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"^path: .*bin_with_object.*weightsOnly: false"):
        load_model(str(folder))
    assert type(load_model(str(folder), weights_only=False)) is BertForSequenceClassification


def test_weights_folder_without_config_json_uses_config(
    tiny_bert_dir: Path, tmp_path: Path, teacher: nn.Module
) -> None:
    folder = tmp_path / "weights_only_folder"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in teacher.state_dict().items()}, str(folder / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="is not a checkpoint folder"):
        load_model(str(folder))
    model = load_model(str(folder), config=str(tiny_bert_dir))
    assert torch.equal(logits(model), logits(teacher))


def test_bare_state_dict_needs_config_or_factory(tmp_path: Path, teacher: nn.Module) -> None:
    file = tmp_path / "bare.pt"
    torch.save(teacher.state_dict(), file)
    with pytest.raises(ModelLoadError, match=r"^config: .*bare\.pt.* give config"):
        load_model(str(file))


def test_mismatched_state_dict_names_missing_and_unexpected_keys(
    tiny_bert_dir: Path, tmp_path: Path, teacher: nn.Module
) -> None:
    file = tmp_path / "clf.safetensors"
    save_file({k: v.contiguous() for k, v in teacher.state_dict().items()}, str(file))
    with pytest.raises(ModelLoadError) as info:
        load_model(str(file), config=str(tiny_bert_dir), task="base")
    message = str(info.value)
    assert message.startswith(f"path: '{file}' does not fit")
    assert "missing keys embeddings.word_embeddings.weight" in message
    assert "unexpected keys bert.embeddings." in message
    assert "The file's keys carry a 'bert.' prefix that the model lacks" in message
    assert "(and " in message  # long lists are cut


def test_shape_mismatch_is_named(tiny_bert_dir: Path, tmp_path: Path, teacher: nn.Module) -> None:
    state = {k: v.clone() for k, v in teacher.state_dict().items()}
    state["classifier.weight"] = torch.zeros(7, 32)
    file = tmp_path / "bad_shape.pt"
    torch.save(state, file)
    with pytest.raises(
        ModelLoadError, match=r"shape mismatches classifier\.weight \(file \(7, 32\) vs model \(3, 32\)\)"
    ):
        load_model(str(file), config=str(tiny_bert_dir), task="sequence-classification")


def test_config_dict_without_model_type(tmp_path: Path, teacher: nn.Module) -> None:
    file = tmp_path / "w.pt"
    torch.save(teacher.state_dict(), file)
    with pytest.raises(ModelLoadError, match=r"^config: .*has no 'model_type'"):
        load_model(str(file), config={"hidden_size": 32})


# ----------------------------------------------------------------------------------------- TorchScript


def test_torchscript_file(tmp_path: Path) -> None:
    torch.manual_seed(3)
    scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 3), nn.Tanh()))
    file = tmp_path / "scripted.pt"
    torch.jit.save(scripted, str(file))
    x = torch.randn(2, 4)
    explicit = load_model(str(file), format="torchscript")
    detected = load_model(str(file))
    assert torch.equal(explicit(x), scripted(x)) and torch.equal(detected(x), scripted(x))


def test_torchscript_format_on_a_plain_pickle(tmp_path: Path) -> None:
    file = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(2)}, file)
    with pytest.raises(ModelLoadError, match=r"^path: .*plain\.pt.* not a TorchScript file"):
        load_model(str(file), format="torchscript")


# ------------------------------------------------------------------------------------------- factories


def test_factory_file_with_args_and_state_dict(factory_file: Path, tmp_path: Path) -> None:
    spec = f"{factory_file}:build"
    model = load_model(factory=spec, factory_args={"hidden": 6})
    assert model.inp.in_features == 6 and model.out.weight is model.inp.weight

    torch.manual_seed(4)
    source = load_model(factory=spec, factory_args={"hidden": 6})
    weights = tmp_path / "factory_weights.safetensors"
    st_save_model(source, str(weights))
    loaded = load_model(str(weights), factory=spec, factory_args={"hidden": 6})
    x = torch.randn(3, 6)
    assert torch.equal(loaded(x), source(x))

    # the file is imported once and cached
    modules = [m for name, m in sys.modules.items() if name.startswith("textbrewer_user_my_factory_")]
    assert len(modules) == 1 and modules[0].BUILDS == [6, 6, 6]
    assert type(loaded) is modules[0].TwoLayer


def test_factory_errors(factory_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"^factory: 'no-colon' should be 'path/to/file\.py:function'"):
        load_model(factory="no-colon")
    with pytest.raises(ModelLoadError, match=r"^factory: file '.*missing\.py' does not exist"):
        load_model(factory=f"{tmp_path / 'missing.py'}:build")
    with pytest.raises(ModelLoadError, match=r"^factory: .* has no function 'nope'; callables there: .*build"):
        load_model(factory=f"{factory_file}:nope")
    with pytest.raises(ModelLoadError, match=r"^factory: .* returned a int; it must return a torch\.nn\.Module"):
        load_model(factory=f"{factory_file}:not_a_module")
    with pytest.raises(ModelLoadError, match=r"^factory: .* raised TypeError"):
        load_model(factory=f"{factory_file}:build", factory_args={"width": 3})
    with pytest.raises(ModelLoadError, match=r"^factoryArgs: given without factory"):
        load_model(factory_args={"hidden": 3})


# ---------------------------------------------------------------------------------------------- errors


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelLoadError, match=rf"^path: '{missing}' does not exist"):
        load_model(str(missing))


def test_folder_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not a model")
    with pytest.raises(
        ModelLoadError,
        match=r"is not a checkpoint folder: expected config\.json with "
        r"model\.safetensors or pytorch_model\.bin",
    ):
        load_model(str(tmp_path))


def test_unknown_task_lists_the_allowed_ones(tiny_bert_dir: Path) -> None:
    with pytest.raises(
        ModelLoadError,
        match=r"^task: 'summarization' is not a known task; use one of "
        r"sequence-classification, token-classification",
    ):
        load_model(str(tiny_bert_dir), task="summarization")


def test_unknown_format(tiny_bert_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"^format: 'onnx' is not known; use one of hf, safetensors"):
        load_model(str(tiny_bert_dir), format="onnx")


def test_errors_are_value_errors() -> None:
    assert issubclass(ModelLoadError, ValueError) and issubclass(ModelSaveError, ValueError)


# ------------------------------------------------------------------------------------------ create_model


def test_create_model_copies_mapped_teacher_layers(teacher: BertForSequenceClassification) -> None:
    torch.manual_seed(5)
    student = create_model({"num_hidden_layers": 2}, init_from=teacher, layer_map=[1, 3])
    assert type(student) is BertForSequenceClassification
    assert student.config.num_hidden_layers == 2 and student.config.hidden_size == 32
    assert student.config.num_labels == 3
    s_state, t_state = student.state_dict(), teacher.state_dict()
    for i, j in enumerate([1, 3]):
        s_layer, t_layer = (
            student.bert.encoder.layer[i].state_dict(),
            teacher.bert.encoder.layer[j].state_dict(),
        )
        assert s_layer.keys() == t_layer.keys()
        for key in s_layer:
            assert torch.equal(s_layer[key], t_layer[key]), key
    for key in s_state:
        if not key.startswith("bert.encoder.layer."):
            assert torch.equal(s_state[key], t_state[key]), key  # embeddings, pooler, classifier
    report = student._textbrewer_init_report
    assert report["layer_prefix"] == "bert.encoder.layer" and report["layer_map"] == [1, 3]
    assert report["task"] == "sequence-classification"
    assert report["random_init"] == [] and report["shape_mismatch"] == []
    assert report["copied"]["bert.encoder.layer.1.output.dense.weight"] == "bert.encoder.layer.3.output.dense.weight"
    assert report["copied"]["classifier.weight"] == "classifier.weight"
    assert set(report["copied"]) == set(s_state)
    # the copies are independent tensors
    assert (
        student.bert.embeddings.word_embeddings.weight.data_ptr()
        != teacher.bert.embeddings.word_embeddings.weight.data_ptr()
    )


def test_create_model_default_layer_map_is_the_first_layers(teacher: BertForSequenceClassification) -> None:
    student = create_model({"num_hidden_layers": 3}, init_from=teacher)
    assert student._textbrewer_init_report["layer_map"] == [0, 1, 2]
    for i in range(3):
        assert torch.equal(
            student.bert.encoder.layer[i].attention.self.query.weight,
            teacher.bert.encoder.layer[i].attention.self.query.weight,
        )


def test_create_model_is_seed_independent_for_copied_weights(teacher: BertForSequenceClassification) -> None:
    torch.manual_seed(6)
    a = create_model({"num_hidden_layers": 2}, init_from=teacher, layer_map=[0, 2])
    torch.manual_seed(7)
    b = create_model({"num_hidden_layers": 2}, init_from=teacher, layer_map=[0, 2])
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka


def test_create_model_keeps_random_init_where_shapes_differ(teacher: BertForSequenceClassification) -> None:
    student = create_model({"hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 2}, init_from=teacher)
    report = student._textbrewer_init_report
    assert "bert.embeddings.word_embeddings.weight" in report["shape_mismatch"]
    assert "bert.embeddings.word_embeddings.weight" in report["random_init"]
    assert set(report["copied"]) | set(report["random_init"]) == set(student.state_dict())


def test_create_model_layer_map_errors(teacher: BertForSequenceClassification) -> None:
    with pytest.raises(
        ModelLoadError,
        match=r"^layerMap: \[0, 4\] has indices \[4\] out of range; the teacher "
        r"\(initFrom\) has 4 layers",
    ):
        create_model({"num_hidden_layers": 2}, init_from=teacher, layer_map=[0, 4])
    with pytest.raises(ModelLoadError, match=r"^layerMap: \[0\] has 1 entries but the student has 2 layers"):
        create_model({"num_hidden_layers": 2}, init_from=teacher, layer_map=[0])
    with pytest.raises(
        ModelLoadError,
        match=r"^layerMap: the student has 6 layers but the teacher \(initFrom\) "
        r"only 4",
    ):
        create_model({"num_hidden_layers": 6}, init_from=teacher)
    with pytest.raises(ModelLoadError, match=r"^layerMap: only meaningful with initFrom"):
        create_model({"model_type": "bert"}, layer_map=[0])


def test_create_model_maps_a_bare_teacher_onto_a_student_with_a_head(teacher: BertForSequenceClassification) -> None:
    base_teacher = teacher.bert  # a BertModel: keys without the "bert." prefix
    student = create_model(
        {"num_hidden_layers": 2}, task="sequence-classification", init_from=base_teacher, layer_map=[1, 3]
    )
    assert type(student) is BertForSequenceClassification
    for i, j in enumerate([1, 3]):
        s_layer, t_layer = student.bert.encoder.layer[i].state_dict(), base_teacher.encoder.layer[j].state_dict()
        for key in s_layer:
            assert torch.equal(s_layer[key], t_layer[key]), key
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, base_teacher.embeddings.word_embeddings.weight)
    assert torch.equal(student.bert.pooler.dense.weight, base_teacher.pooler.dense.weight)
    report = student._textbrewer_init_report
    assert report["layer_prefix"] == "bert.encoder.layer" and report["layer_map"] == [1, 3]
    assert report["copied"]["bert.encoder.layer.1.output.dense.weight"] == "encoder.layer.3.output.dense.weight"
    assert report["copied"]["bert.embeddings.word_embeddings.weight"] == "embeddings.word_embeddings.weight"
    assert sorted(report["random_init"]) == ["classifier.bias", "classifier.weight"]
    assert report["unexpected"] == []


def test_create_model_maps_a_teacher_with_a_head_onto_a_bare_student(teacher: BertForSequenceClassification) -> None:
    student = create_model({"num_hidden_layers": 2}, task="base", init_from=teacher, layer_map=[0, 2])
    assert type(student) is BertModel
    for i, j in enumerate([0, 2]):
        s_layer, t_layer = student.encoder.layer[i].state_dict(), teacher.bert.encoder.layer[j].state_dict()
        for key in s_layer:
            assert torch.equal(s_layer[key], t_layer[key]), key
    assert torch.equal(student.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    report = student._textbrewer_init_report
    assert report["layer_prefix"] == "encoder.layer" and report["layer_map"] == [0, 2]
    assert report["copied"]["encoder.layer.1.output.dense.weight"] == "bert.encoder.layer.2.output.dense.weight"
    assert set(report["copied"]) == set(student.state_dict()) and report["random_init"] == []
    assert sorted(report["unexpected"]) == ["classifier.bias", "classifier.weight"]


def test_create_model_refuses_an_init_from_that_copies_nothing(teacher: BertForSequenceClassification) -> None:
    with pytest.raises(
        ModelLoadError,
        match=r"^initFrom: no weight of the teacher \(BertForSequenceClassification\) fits the student "
        r"\(BertForSequenceClassification\).*student keys: bert\.embeddings\.word_embeddings\.weight.*"
        r"build the student from a config alone",
    ):
        create_model(
            {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 24, "num_labels": 5}, init_from=teacher
        )


def test_create_model_from_config_alone(tiny_bert_dir: Path) -> None:
    config = bert_config_dict(tiny_bert_dir)
    model = create_model(config, task="token-classification")
    assert type(model) is BertForTokenClassification and model.config.num_labels == 3
    assert type(create_model(config)) is BertForSequenceClassification  # from architectures
    assert (
        type(
            create_model(
                {
                    "model_type": "bert",
                    "hidden_size": 32,
                    "num_attention_heads": 4,
                    "intermediate_size": 64,
                    "num_hidden_layers": 1,
                    "vocab_size": 50,
                }
            )
        )
        is BertModel
    )
    with pytest.raises(ModelLoadError, match=r"^config: .*has no 'model_type'"):
        create_model({"hidden_size": 32})
    with pytest.raises(ModelLoadError, match=r"^task: 'qa' is not a known task"):
        create_model(config, task="qa")


def test_create_model_overrides_num_labels(teacher: BertForSequenceClassification) -> None:
    student = create_model({"num_labels": 5, "num_hidden_layers": 1}, init_from=teacher)
    assert student.classifier.out_features == 5
    assert sorted(student._textbrewer_init_report["shape_mismatch"]) == [
        "classifier.bias",
        "classifier.weight",
    ]


# -------------------------------------------------------------------------------------------- saving


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def test_save_then_load_round_trip(tmp_path: Path, teacher: BertForSequenceClassification) -> None:
    student = create_model({"num_hidden_layers": 2}, init_from=teacher, layer_map=[1, 3])
    target = tmp_path / "out" / "student"
    written = save_model(student, str(target))
    assert written == ["config.json", "model.safetensors"]
    assert sorted(os.listdir(target)) == written
    assert leftovers(target.parent, "student") == []
    reloaded = load_model(str(target))
    assert type(reloaded) is BertForSequenceClassification
    assert torch.equal(logits(reloaded), logits(student))


def test_save_over_an_existing_checkpoint_keeps_other_files(
    tmp_path: Path, teacher: BertForSequenceClassification
) -> None:
    target = tmp_path / "ckpt"
    save_model(teacher, str(target))
    (target / "tokenizer.json").write_text("{}")
    (target / "pytorch_model.bin").write_bytes(b"stale")  # a stale weights file from an older save
    student = create_model({"num_hidden_layers": 1}, init_from=teacher)
    written = save_model(student, str(target))
    assert written == ["config.json", "model.safetensors"]
    assert sorted(os.listdir(target)) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert leftovers(tmp_path, "ckpt") == []
    assert torch.equal(logits(load_model(str(target))), logits(student))


def test_save_plain_module_with_tied_weights(tmp_path: Path, factory_file: Path) -> None:
    spec = f"{factory_file}:build"
    torch.manual_seed(8)
    model = load_model(factory=spec, factory_args={"hidden": 5})
    target = tmp_path / "plain"
    assert save_model(model, str(target)) == ["model.safetensors"]
    loaded = load_model(str(target), factory=spec, factory_args={"hidden": 5})
    x = torch.randn(2, 5)
    assert torch.equal(loaded(x), model(x))
    assert leftovers(tmp_path, "plain") == []


def test_save_into_a_file_path_fails(tmp_path: Path, teacher: nn.Module) -> None:
    file = tmp_path / "taken"
    file.write_text("x")
    with pytest.raises(ModelSaveError, match=r"^directory: '.*taken' exists and is a file"):
        save_model(teacher, str(file))


# ------------------------------------------------------------------------------------------- counting


def test_num_parameters_counts_tied_weights_once(tiny_bert_dir: Path) -> None:
    torch.manual_seed(9)
    mlm = BertForMaskedLM(BertConfig.from_pretrained(str(tiny_bert_dir)))
    assert mlm.cls.predictions.decoder.weight is mlm.bert.embeddings.word_embeddings.weight
    distinct = {p.data_ptr(): p.numel() for p in mlm.parameters()}
    assert num_parameters(mlm) == sum(distinct.values())

    lin = nn.Module()
    lin.a = nn.Linear(4, 4)
    lin.b = nn.Linear(4, 4)
    lin.b.weight = lin.a.weight
    assert num_parameters(lin) == 16 + 4 + 4
    lin.a.bias.requires_grad_(False)
    assert num_parameters(lin, trainable_only=True) == 16 + 4
    assert num_parameters(lin) == 24
