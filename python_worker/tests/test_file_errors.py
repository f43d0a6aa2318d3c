"""Files that cannot be used fail at once, in one line that names the file: folders that ship code (auto_map) without
trust, damaged weights and damaged tokenizer files. Every damaged file is built here."""

from __future__ import annotations

import builtins
import importlib.util
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from op_call import call_op
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification

from textbrewer_worker import tokenizer_ops  # noqa: F401  (registers the ops)
from textbrewer_worker.models import ModelLoadError, load_model
from textbrewer_worker.tokenizer_ops import TokenizerLoadError
from textbrewer_worker.wire.ops import WorkerState

AUTO_MAP = {"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie"]
# Loading must not wait for an answer on stdin; transformers' prompt waits 15 s.
FAST_S = 5.0


def remote_code_folder(folder: Path) -> Path:
    """A model whose config names code in the folder (a model_type transformers does not know)."""
    return _remote_code_helper().write_remote_code_folder(folder)


def _remote_code_helper() -> Any:
    """The builder the TypeScript tests run too (test/helpers/remote_code_folder.py), so the sources live once."""
    path = Path(__file__).resolve().parents[2] / "test" / "helpers" / "remote_code_folder.py"
    spec = importlib.util.spec_from_file_location("remote_code_folder", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bert_folder(folder: Path, safetensors: bool = True) -> Path:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, num_labels=2
    )
    BertForSequenceClassification(config).save_pretrained(str(folder), safe_serialization=safetensors)
    return folder


def with_auto_map(folder: Path, file: str, auto_map: Any) -> Path:
    config = json.loads((folder / file).read_text())
    config["auto_map"] = auto_map
    (folder / file).write_text(json.dumps(config))
    return folder


def truncate(file: Path, keep: float = 0.5) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture
def no_prompt(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records any prompt instead of reading stdin (in the worker, stdin is Node's lifeline)."""
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return "n"

    monkeypatch.setattr(builtins, "input", fake_input)
    return prompts


# ------------------------------------------------------------------------------------------ remote code


@pytest.mark.parametrize("kind", ["unknown model_type", "model_type bert"])
def test_model_folder_with_auto_map_is_refused_at_once(tmp_path: Path, no_prompt: list[str], kind: str) -> None:
    if kind == "unknown model_type":
        folder = remote_code_folder(tmp_path / "remote")
    else:
        folder = with_auto_map(bert_folder(tmp_path / "bert"), "config.json", {"AutoModel": "modeling_x.BertX"})
    start = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"^path: '.*config\.json' has an auto_map \(.*\).*trustRemoteCode: true"):
        load_model(str(folder))
    assert time.monotonic() - start < FAST_S
    assert no_prompt == []


def test_config_path_with_auto_map_is_refused(tmp_path: Path, no_prompt: list[str]) -> None:
    folder = with_auto_map(bert_folder(tmp_path / "bert"), "config.json", {"AutoConfig": "x.Config"})
    with pytest.raises(ModelLoadError, match=r"^config: '.*config\.json' has an auto_map.*trustRemoteCode"):
        load_model(str(folder / "model.safetensors"), config=str(folder / "config.json"))
    assert no_prompt == []


def test_trusted_remote_code_runs_the_folder_code(
    tmp_path: Path, no_prompt: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers.dynamic_module_utils as dynamic

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder = remote_code_folder(tmp_path / "remote")
    model = load_model(str(folder), trust_remote_code=True)
    assert type(model).__name__ == "TinyModel"
    assert model(input_ids=torch.tensor([[1, 2, 3]]))["logits"].shape == (1, 2)
    assert no_prompt == []


# ------------------------------------------------------------------------------------------ damaged weights


def damaged_hf_safetensors(tmp: Path) -> tuple[str, str, str]:
    folder = bert_folder(tmp / "hf")
    truncate(folder / "model.safetensors")
    return str(folder), "model.safetensors", "truncated or damaged"


def garbage_hf_safetensors(tmp: Path) -> tuple[str, str, str]:
    folder = bert_folder(tmp / "hf")
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 4)
    return str(folder), "model.safetensors", "not a valid safetensors file"


def damaged_hf_bin(tmp: Path) -> tuple[str, str, str]:
    folder = bert_folder(tmp / "hf", safetensors=False)
    truncate(folder / "pytorch_model.bin")
    return str(folder), "pytorch_model.bin", "truncated or damaged"


def damaged_shard_index(tmp: Path) -> tuple[str, str, str]:
    folder = bert_folder(tmp / "hf")
    (folder / "model.safetensors.index.json").write_text('{"weight_map": {')
    return str(folder), "model.safetensors.index.json", "not valid JSON"


def damaged_config(tmp: Path) -> tuple[str, str, str]:
    folder = bert_folder(tmp / "hf")
    (folder / "config.json").write_text('{"model_type": "bert",')
    return str(folder), "config.json", "not valid JSON"


def damaged_state_dict_pt(tmp: Path) -> tuple[str, str, str]:
    file = tmp / "weights.pt"
    torch.save({"w": torch.zeros(1000)}, file)
    truncate(file)
    return str(file), "weights.pt", "truncated or damaged"


def empty_state_dict_pt(tmp: Path) -> tuple[str, str, str]:
    file = tmp / "weights.pt"
    file.write_bytes(b"")
    return str(file), "weights.pt", "empty"


def damaged_state_dict_safetensors(tmp: Path) -> tuple[str, str, str]:
    file = tmp / "weights.safetensors"
    save_file({"w": torch.zeros(1000)}, str(file))
    truncate(file)
    return str(file), "weights.safetensors", "truncated or damaged"


@pytest.mark.parametrize(
    "damage",
    [
        damaged_hf_safetensors,
        garbage_hf_safetensors,
        damaged_hf_bin,
        damaged_shard_index,
        damaged_config,
        damaged_state_dict_pt,
        empty_state_dict_pt,
        damaged_state_dict_safetensors,
    ],
)
def test_damaged_weights_name_the_file_and_the_cause(tmp_path: Path, damage: Any) -> None:
    path, file, cause = damage(tmp_path)
    config = {"model_type": "bert"} if not Path(path).is_dir() else None
    with pytest.raises(ModelLoadError) as info:
        load_model(path, config=config)
    message = str(info.value)
    assert message.startswith("path: '"), message
    assert file in message and cause in message, message
    assert "\n" not in message


# ------------------------------------------------------------------------------------------ tokenizers


@pytest.fixture
def tokenizer_dir(tmp_path: Path) -> Path:
    from transformers import BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    out = tmp_path / "tok"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(str(out))
    return out


def load_tokenizer(path: Path, **args: Any) -> dict[str, Any]:
    return call_op(WorkerState(device="cpu"), "load_tokenizer", {"path": str(path), **args})


def test_tokenizer_with_auto_map_is_refused_at_once(tokenizer_dir: Path, no_prompt: list[str]) -> None:
    with_auto_map(tokenizer_dir, "tokenizer_config.json", {"AutoTokenizer": ["tok.Slow", "tok.Fast"]})
    start = time.monotonic()
    with pytest.raises(
        TokenizerLoadError, match=r"^path: '.*tokenizer_config\.json' has an auto_map \(AutoTokenizer: tok\.Slow, "
    ):
        load_tokenizer(tokenizer_dir)
    assert time.monotonic() - start < FAST_S
    assert no_prompt == []


def test_tokenizer_named_by_a_config_auto_map_is_refused(tokenizer_dir: Path, no_prompt: list[str]) -> None:
    (tokenizer_dir / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert load_tokenizer(tokenizer_dir)["className"] == "BertTokenizerFast"
    with_auto_map(tokenizer_dir, "config.json", {"AutoModel": "m.Model"})
    assert load_tokenizer(tokenizer_dir)["className"] == "BertTokenizerFast"  # no tokenizer code named
    with_auto_map(tokenizer_dir, "config.json", {"AutoTokenizer": ["t.Slow", None]})
    expected = r"config\.json' has an auto_map \(AutoTokenizer: t\.Slow\).*trustRemote"
    with pytest.raises(TokenizerLoadError, match=expected):
        load_tokenizer(tokenizer_dir)
    assert no_prompt == []


@pytest.mark.parametrize(
    "file, cause",
    [
        ("tokenizer.json", "not valid JSON"),
        ("tokenizer_config.json", "not valid JSON"),
        ("special_tokens_map.json", "not valid JSON"),
    ],
)
def test_damaged_tokenizer_files_are_named(tokenizer_dir: Path, file: str, cause: str) -> None:
    truncate(tokenizer_dir / file)
    with pytest.raises(TokenizerLoadError, match=rf"^path: '.*{file}' is {cause} \(.*: line \d+ column \d+\)$"):
        load_tokenizer(tokenizer_dir)


def test_tokenizer_json_the_library_cannot_read_is_named(tokenizer_dir: Path) -> None:
    (tokenizer_dir / "tokenizer.json").write_text('{"version": "1.0", "model": 42}')
    with pytest.raises(TokenizerLoadError, match=r"^path: '.*tokenizer\.json' is not a tokenizer file"):
        load_tokenizer(tokenizer_dir)


def test_folder_without_tokenizer_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(TokenizerLoadError, match=r"it has none of tokenizer\.json.*\(its files: notes\.txt\)"):
        load_tokenizer(tmp_path)


def test_trusted_flag_reaches_transformers(tokenizer_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tokenizer_dir, tmp_path / "copy")
    assert load_tokenizer(tmp_path / "copy", trustRemoteCode=True)["className"] == "BertTokenizerFast"


def test_packaged_model_files_are_named(tmp_path: Path) -> None:
    from textbrewer_worker.packaged_models import PackagedModelError, check_bert_folder

    folder = bert_folder(tmp_path / "pkg")
    truncate(folder / "model.safetensors")
    with pytest.raises(PackagedModelError, match=r"^'.*pkg/model\.safetensors' is not a valid safetensors file"):
        check_bert_folder(str(folder), {"model_type": "bert"})
    (folder / "config.json").write_text("{")
    with pytest.raises(PackagedModelError, match=r"^'.*pkg/config\.json' is not valid JSON"):
        check_bert_folder(str(folder), {})
