"""Hub ids (org/name) found in a local Hugging Face cache built here (huggingface_hub's layout), never downloaded."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

from textbrewer_worker import tokenizer_ops
from textbrewer_worker.hub_cache import ModelNotFoundError, hub_cache_dir, is_hub_id, resolve_local_path
from textbrewer_worker.models import ModelLoadError, init_report, load_model

MODEL_ID = "tiny-org/tiny-bert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "great", "bad"]


def write_snapshot(cache: Path, model_id: str, source: Path, commit: str, ref: str | None = "main") -> Path:
    """Files of ``source`` as huggingface_hub stores them: blobs named by hash, symlinked from snapshots/<commit>."""
    repo = cache / ("models--" + model_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for file in sorted(source.iterdir()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / file.name)
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BertForMaskedLM]:
    """A tiny masked-LM BERT and its fast tokenizer saved in one folder."""
    folder = tmp_path_factory.mktemp("tiny_mlm")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    model = BertForMaskedLM(config).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True).save_pretrained(str(folder))
    return folder, model


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: tuple[Path, BertForMaskedLM]) -> Path:
    folder = tmp_path / "hub"
    write_snapshot(folder, MODEL_ID, saved[0], COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    return folder


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a network connection was attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # even with the hub's offline mode off, nothing is fetched
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")


def test_model_and_tokenizer_load_from_the_cache_by_id(
    cache: Path, saved: tuple[Path, BertForMaskedLM], no_network: None
) -> None:
    model = load_model(MODEL_ID, task="masked-lm")
    ids = torch.tensor([[2, 5, 6, 7, 8, 3]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, saved[1](input_ids=ids).logits)
    report = init_report(model)
    assert report is not None and report["path"] == str(cache / "models--tiny-org--tiny-bert" / "snapshots" / COMMIT)
    tok = tokenizer_ops.load(MODEL_ID)
    assert tok.is_fast and tok("the movie was great")["input_ids"] == [2, 5, 6, 7, 8, 3]


def test_a_missing_id_gives_one_error_for_models_and_tokenizers(cache: Path, no_network: None) -> None:
    with pytest.raises(ModelNotFoundError) as from_model:
        load_model("tiny-org/absent", task="masked-lm")
    with pytest.raises(ModelNotFoundError) as from_tokenizer:
        tokenizer_ops.load("tiny-org/absent")
    message = str(from_model.value)
    assert message == str(from_tokenizer.value)
    assert message.startswith("path: 'tiny-org/absent' is neither a local path")
    assert f"there is no 'models--tiny-org--absent' in it (cache folder '{cache}', from HF_HUB_CACHE)" in message
    assert "hf download tiny-org/absent" in message and "give the path of a local folder" in message
    # callers catching either loader's own error class keep catching it
    assert isinstance(from_model.value, ValueError) and isinstance(from_tokenizer.value, OSError)


def test_snapshot_without_refs_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: tuple[Path, BertForMaskedLM]
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    only = write_snapshot(tmp_path, "solo", saved[0], "aaaa", ref=None)
    assert resolve_local_path("solo") == str(only)  # an id without org, one snapshot: that one
    write_snapshot(tmp_path, "two/snaps", saved[0], "bbbb", ref=None)
    repo = tmp_path / "models--two--snaps"
    (repo / "snapshots" / "cccc").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"has 2 snapshots \(bbbb, cccc\) and no refs/main"):
        resolve_local_path("two/snaps")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("dddd\n")
    with pytest.raises(ModelNotFoundError, match=r"refs/main' names snapshot 'dddd', which is not in"):
        resolve_local_path("two/snaps")
    (repo / "refs" / "main").write_text("bbbb\n")
    assert resolve_local_path("two/snaps") == str(repo / "snapshots" / "bbbb")


def test_an_existing_local_path_wins_over_the_cache(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: tuple[Path, BertForMaskedLM]
) -> None:
    local = tmp_path / "work"
    (local / "tiny-org").mkdir(parents=True)
    (local / "tiny-org" / "tiny-bert").symlink_to(saved[0])
    monkeypatch.chdir(local)
    assert resolve_local_path(MODEL_ID) == MODEL_ID
    assert init_report(load_model(MODEL_ID, task="masked-lm"))["path"] == MODEL_ID  # type: ignore[index]


def test_paths_that_are_not_ids_keep_their_error(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"^path: '.*weights\.safetensors' does not exist"):
        load_model("some/weights.safetensors")
    with pytest.raises(ModelLoadError, match=r"^path: '.*nowhere' does not exist"):
        load_model(str(tmp_path / "nowhere"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("org/name", True),
        ("sentence-transformers/all-MiniLM-L6-v2", True),
        ("bert-base-uncased", True),
        ("runs/t3/best", False),
        ("/abs/org/name", False),
        ("./org/name", False),
        ("org/model.safetensors", False),
        ("org--x/name", False),
        ("org/na..me", False),
        ("", False),
    ],
)
def test_is_hub_id(value: str, expected: bool) -> None:
    assert is_hub_id(value) is expected


def test_cache_folder_follows_huggingface_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == (tmp_path / "home" / ".cache" / "huggingface" / "hub", "default")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == (tmp_path / "xdg" / "huggingface" / "hub", "XDG_CACHE_HOME")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hub_cache_dir() == (tmp_path / "hf" / "hub", "HF_HOME")
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "legacy"))
    assert hub_cache_dir() == (tmp_path / "legacy", "HUGGINGFACE_HUB_CACHE")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hub_cache_dir() == (tmp_path / "hub", "HF_HUB_CACHE")
