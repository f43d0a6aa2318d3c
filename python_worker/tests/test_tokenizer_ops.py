"""Tokenizer ops on a BertTokenizerFast built from a tiny vocabulary in tmp_path (no network), and the packaged-model lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from op_call import call_op

from textbrewer_worker import packaged_models, tokenizer_ops  # noqa: F401  (registers the ops)
from textbrewer_worker.wire.ops import WorkerState
from textbrewer_worker.wire.protocol import InvalidArgsError

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "movie",
    "was",
    "great",
    "bad",
    "new",
    "york",
    "city",
    "##s",
    "play",
    "##ing",
    "in",
    "john",
    "lives",
    ".",
    "!",
]


@pytest.fixture()
def tokenizer_dir(tmp_path: Path) -> str:
    from transformers import BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    out = tmp_path / "tok"
    tok.save_pretrained(str(out))
    return str(out)


@pytest.fixture()
def loaded(tokenizer_dir: str) -> tuple[WorkerState, str]:
    state = WorkerState(device="cpu")
    info = call_op(state, "load_tokenizer", {"path": tokenizer_dir})
    return state, info["handle"]


def ids(*tokens: str) -> list[int]:
    return [VOCAB.index(t) for t in tokens]


def test_load_tokenizer_describes_it(tokenizer_dir: str) -> None:
    state = WorkerState(device="cpu")
    info = call_op(state, "load_tokenizer", {"path": tokenizer_dir})
    assert info["handle"] == "t1"
    assert info["className"] == "BertTokenizerFast"
    assert info["vocabSize"] == len(VOCAB)
    assert (info["padTokenId"], info["clsTokenId"], info["sepTokenId"]) == (0, 2, 3)
    assert call_op(state, "load_tokenizer", {"path": tokenizer_dir})["handle"] == "t2"


def test_load_tokenizer_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="cannot load a tokenizer"):
        call_op(WorkerState(device="cpu"), "load_tokenizer", {"path": str(tmp_path / "nowhere")})


def test_tokenize_pads_to_the_longest(loaded: tuple[WorkerState, str]) -> None:
    state, handle = loaded
    out = call_op(
        state, "tokenize", {"tokenizer": handle, "texts": ["The movie was great!", "bad"], "padding": "longest"}
    )
    assert set(out) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(t.dtype == torch.int64 for t in out.values())
    assert out["input_ids"].tolist() == [
        [2, *ids("the", "movie", "was", "great", "!"), 3],
        [2, *ids("bad"), 3, 0, 0, 0, 0],
    ]
    assert out["attention_mask"].tolist() == [[1] * 7, [1, 1, 1, 0, 0, 0, 0]]
    assert out["token_type_ids"].sum().item() == 0


def test_tokenize_max_length_truncates_and_pads(loaded: tuple[WorkerState, str]) -> None:
    state, handle = loaded
    out = call_op(
        state,
        "tokenize",
        {
            "tokenizer": handle,
            "texts": ["the movie was great", "bad"],
            "maxLength": 5,
            "padding": "max_length",
            "truncation": True,
        },
    )
    assert out["input_ids"].tolist() == [[2, *ids("the", "movie", "was"), 3], [2, *ids("bad"), 3, 0, 0]]


def test_tokenize_pairs_set_token_types(loaded: tuple[WorkerState, str]) -> None:
    state, handle = loaded
    out = call_op(state, "tokenize", {"tokenizer": handle, "texts": ["the movie"], "textPairs": ["great"]})
    assert out["input_ids"].tolist() == [[2, *ids("the", "movie"), 3, *ids("great"), 3]]
    assert out["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1]]


def test_tokenize_rejects_bad_arguments(loaded: tuple[WorkerState, str]) -> None:
    state, handle = loaded
    with pytest.raises(ValueError, match="maxLength: required"):
        call_op(state, "tokenize", {"tokenizer": handle, "texts": ["a"], "padding": "max_length"})
    with pytest.raises(InvalidArgsError, match=r"tokenize: args.texts\[1\] must be string, got 3"):
        call_op(state, "tokenize", {"tokenizer": handle, "texts": ["a", 3]})
    with pytest.raises(InvalidArgsError, match="tokenize: args.padding must be one of"):
        call_op(state, "tokenize", {"tokenizer": handle, "texts": ["a"], "padding": "shortest"})
    with pytest.raises(KeyError, match="no tokenizer 't9'"):
        call_op(state, "tokenize", {"tokenizer": "t9", "texts": ["a"]})


def test_tokenize_words_labels_the_first_sub_token(loaded: tuple[WorkerState, str]) -> None:
    state, handle = loaded
    words = [["John", "lives", "in", "New", "York", "cities"], ["playing", "."]]
    labels = [[1, 0, 0, 2, 3, 0], [0, 0]]
    out = call_op(
        state, "tokenize_words", {"tokenizer": handle, "words": words, "labels": labels, "padding": "longest"}
    )
    # "cities" is not in the vocabulary: [UNK]; "playing" -> play ##ing
    assert out["input_ids"].tolist()[0] == [2, *ids("john", "lives", "in", "new", "york"), 1, 3]
    assert out["input_ids"].tolist()[1] == [2, *ids("play", "##ing", "."), 3, 0, 0, 0]
    assert out["labels"].tolist() == [
        [-100, 1, 0, 0, 2, 3, 0, -100],
        [-100, 0, -100, 0, -100, -100, -100, -100],
    ]
    assert out["word_ids"].tolist() == [[-1, 0, 1, 2, 3, 4, 5, -1], [-1, 0, 0, 1, -1, -1, -1, -1]]
    every = call_op(
        state,
        "tokenize_words",
        {"tokenizer": handle, "words": [["playing"]], "labels": [[4]], "labelAllSubwords": True},
    )
    assert every["labels"].tolist() == [[-100, 4, 4, -100]]


def test_tokenize_words_truncates_and_checks_label_counts(loaded: tuple[WorkerState, str]) -> None:
    state, handle = loaded
    out = call_op(
        state,
        "tokenize_words",
        {
            "tokenizer": handle,
            "words": [["the", "movie", "was", "great"]],
            "labels": [[1, 2, 3, 4]],
            "maxLength": 4,
        },
    )
    assert out["labels"].tolist() == [[-100, 1, 2, -100]]
    assert out["word_ids"].tolist() == [[-1, 0, 1, -1]]
    with pytest.raises(ValueError, match=r"labels\[0\]: 1 labels for 2 words"):
        call_op(state, "tokenize_words", {"tokenizer": handle, "words": [["the", "movie"]], "labels": [[1]]})
    without = call_op(state, "tokenize_words", {"tokenizer": handle, "words": [["the"]]})
    assert "labels" not in without and without["word_ids"].tolist() == [[-1, 0, -1]]


def test_dispose_tokenizer(loaded: tuple[WorkerState, str]) -> None:
    state, handle = loaded
    call_op(state, "dispose_tokenizer", {"tokenizer": handle})
    with pytest.raises(KeyError):
        call_op(state, "tokenize", {"tokenizer": handle, "texts": ["a"]})


def _fake_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict, shapes: dict[str, list[int]]
) -> None:
    """An installed distribution 'fake-model' whose RECORD lists fake_model/model/{config.json, model.safetensors}."""
    from safetensors.torch import save_file

    site = tmp_path / "site"
    folder = site / "fake_model" / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file({k: torch.zeros(v) for k, v in shapes.items()}, str(folder / "model.safetensors"))
    info = site / "fake_model-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-model\nVersion: 1.0\n")
    (info / "RECORD").write_text(
        "fake_model/__init__.py,,\nfake_model/model/config.json,,\nfake_model/model/model.safetensors,,\n"
        "fake_model-1.0.dist-info/METADATA,,\nfake_model-1.0.dist-info/RECORD,,\n"
    )
    monkeypatch.syspath_prepend(str(site))


def _bert_shapes(layers: int, hidden: int, vocab: int = 10, positions: int = 8) -> dict[str, list[int]]:
    shapes = {
        "embeddings.word_embeddings.weight": [vocab, hidden],
        "embeddings.position_embeddings.weight": [positions, hidden],
    }
    for i in range(layers):
        shapes[f"encoder.layer.{i}.attention.self.query.weight"] = [hidden, hidden]
        shapes[f"encoder.layer.{i}.intermediate.dense.weight"] = [2 * hidden, hidden]
    return shapes


BERT_CONFIG = {
    "model_type": "bert",
    "num_hidden_layers": 2,
    "hidden_size": 4,
    "intermediate_size": 8,
    "vocab_size": 10,
    "max_position_embeddings": 8,
}


def test_find_packaged_model_through_the_file_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_distribution(tmp_path, monkeypatch, BERT_CONFIG, _bert_shapes(2, 4))
    out = call_op(
        WorkerState(device="cpu"),
        "find_packaged_model",
        {
            "distribution": "fake-model",
            "subdir": "fake_model/model",
            "expect": {"model_type": "bert", "num_hidden_layers": 2},
        },
    )
    assert Path(out["path"]) == (tmp_path / "site" / "fake_model" / "model").resolve()
    assert out["version"] == "1.0" and out["files"] == ["config.json", "model.safetensors"]
    assert out["config"]["hidden_size"] == 4 and out["config"]["checkedTensors"] == 6


def test_find_packaged_model_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_distribution(tmp_path, monkeypatch, BERT_CONFIG, _bert_shapes(3, 4))
    state = WorkerState(device="cpu")
    with pytest.raises(packaged_models.PackagedModelError, match="num_hidden_layers is 2, expected 6"):
        call_op(
            state,
            "find_packaged_model",
            {"distribution": "fake-model", "subdir": "fake_model/model", "expect": {"num_hidden_layers": 6}},
        )
    with pytest.raises(
        packaged_models.PackagedModelError, match="encoder.layer.2.attention.self.query.weight: present"
    ):
        call_op(state, "find_packaged_model", {"distribution": "fake-model", "subdir": "fake_model/model"})
    with pytest.raises(packaged_models.PackagedModelError, match="has no config.json"):
        call_op(state, "find_packaged_model", {"distribution": "fake-model", "subdir": "fake_model"})
    with pytest.raises(packaged_models.PackagedModelError, match="not installed"):
        call_op(state, "find_packaged_model", {"distribution": "no-such-distribution-xyz", "subdir": "x"})


def test_find_packaged_model_checks_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = _bert_shapes(2, 4)
    shapes["encoder.layer.1.attention.self.query.weight"] = [4, 5]
    _fake_distribution(tmp_path, monkeypatch, BERT_CONFIG, shapes)
    with pytest.raises(
        packaged_models.PackagedModelError,
        match=r"layer.1.attention.self.query.weight: shape \[4, 5\], expected \[4, 4\]",
    ):
        call_op(
            WorkerState(device="cpu"),
            "find_packaged_model",
            {"distribution": "fake-model", "subdir": "fake_model/model"},
        )
