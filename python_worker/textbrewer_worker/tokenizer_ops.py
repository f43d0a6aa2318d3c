"""Tokenizer ops: Hugging Face fast tokenizers held by the worker, returning int64 tensors ready to be batches.

    load_tokenizer      -> {handle, className, vocabSize, ...}
    tokenize            -> {input_ids, attention_mask, token_type_ids?}
    tokenize_words      -> {input_ids, attention_mask, token_type_ids?, labels?, word_ids}
    dispose_tokenizer

(their args: src/worker/ops/tokenizers.ts, checked before a handler runs, and ops_types.py).

Tokenizers load from local files only (no hub downloads; a Hub id ``org/name`` is found in the local Hugging Face
cache, as for models, see hub_cache) and must be fast (Rust) tokenizers: word alignment for token classification needs
their offsets/word ids. A folder whose tokenizer config names code of its own
(``auto_map``) is refused unless ``trustRemoteCode`` is true; a damaged file is named in the error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .file_errors import read_failure, read_json
from .hub_cache import resolve_local_path
from .remote_code import check_tokenizer_folder
from .wire.ops import WorkerState, op
from .wire.ops_types import (
    DisposeTokenizerArgs,
    LoadTokenizerArgs,
    LoadTokenizerResult,
    TokenizeArgs,
    TokenizeWordsArgs,
)

IGNORE_INDEX = -100
JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
# Any one of these makes a folder a tokenizer folder (a fast tokenizer file, its config, or a vocabulary).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


class TokenizerLoadError(OSError):
    """A tokenizer folder is missing, refused (code of its own) or holds a file that cannot be read."""


def _tokenizers(state: WorkerState) -> dict[str, Any]:
    return state.extensions.setdefault("tokenizers", {})


def _tokenizer(state: WorkerState, args: TokenizeArgs | TokenizeWordsArgs | DisposeTokenizerArgs) -> Any:
    handle = args["tokenizer"]
    table = _tokenizers(state)
    if handle not in table:
        raise KeyError(f"tokenizer: no tokenizer '{handle}' in this worker (disposed, or from another worker?)")
    return table[handle]


def _length_options(args: TokenizeArgs | TokenizeWordsArgs) -> dict[str, Any]:
    padding = args["padding"]
    max_length = args["maxLength"]
    if padding == "max_length" and max_length is None:
        raise ValueError('maxLength: required with padding "max_length"')
    return {"padding": padding, "max_length": max_length, "truncation": args["truncation"]}


def _as_int64(encoding: Any) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key in encoding:
            out[key] = encoding[key].to(torch.int64).contiguous()
    return out


def _check_folder(folder: Path, trust_remote_code: bool) -> None:
    """Fast checks before transformers reads the folder: tokenizer files present, JSON files valid, no auto_map."""
    names = sorted(entry.name for entry in folder.iterdir())
    if not any(name in names for name in TOKENIZER_FILES):
        raise TokenizerLoadError(
            f"path: cannot load a tokenizer from '{folder}': it has none of {', '.join(TOKENIZER_FILES)} "
            f"(its files: {', '.join(names) or 'none'}); save one with tokenizer.save_pretrained"
        )
    check_tokenizer_folder(folder, trust_remote_code, TokenizerLoadError)
    for name in JSON_FILES:
        if name in names:
            try:
                read_json(folder / name)
            except Exception as exc:
                raise TokenizerLoadError(f"path: {read_failure(folder / name, exc)}") from exc


def load(path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    path = resolve_local_path(path)
    folder = Path(path)
    if not folder.exists():
        raise TokenizerLoadError(f"path: cannot load a tokenizer from '{path}': it does not exist")
    if folder.is_dir():
        _check_folder(folder, trust_remote_code)
    try:
        tok = AutoTokenizer.from_pretrained(
            path, local_files_only=True, use_fast=True, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        tokenizer_json = folder / "tokenizer.json"
        if type(exc) is Exception and tokenizer_json.is_file():
            # the tokenizers library raises a bare Exception for a tokenizer.json it cannot parse
            raise TokenizerLoadError(
                f"path: '{tokenizer_json}' is not a tokenizer file the tokenizers library reads ({exc})"
            ) from exc
        raise TokenizerLoadError(
            f"path: cannot load a tokenizer from '{path}' ({type(exc).__name__}: {str(exc).strip()[:300]})"
        ) from exc
    if not getattr(tok, "is_fast", False):
        raise ValueError(
            f"path: '{path}' gave a slow tokenizer ({type(tok).__name__}); a fast tokenizer (tokenizer.json, or a "
            "vocabulary the tokenizers library converts) is needed"
        )
    return tok


@op("load_tokenizer")
def load_tokenizer(state: WorkerState, args: LoadTokenizerArgs) -> LoadTokenizerResult:
    tok = load(args["path"], args["trustRemoteCode"])
    table = _tokenizers(state)
    state.extensions["next_tokenizer"] = state.extensions.get("next_tokenizer", 0) + 1
    handle = f"t{state.extensions['next_tokenizer']}"
    table[handle] = tok
    return {
        "handle": handle,
        "className": type(tok).__name__,
        "vocabSize": len(tok),
        "modelMaxLength": int(tok.model_max_length) if tok.model_max_length < 10**9 else None,
        "padTokenId": tok.pad_token_id,
        "clsTokenId": tok.cls_token_id,
        "sepTokenId": tok.sep_token_id,
        "maskTokenId": tok.mask_token_id,
        "unkTokenId": tok.unk_token_id,
        "modelInputNames": list(tok.model_input_names),
    }


@op("dispose_tokenizer")
def dispose_tokenizer(state: WorkerState, args: DisposeTokenizerArgs) -> None:
    _tokenizer(state, args)
    del _tokenizers(state)[args["tokenizer"]]


@op("tokenize")
def tokenize(state: WorkerState, args: TokenizeArgs) -> dict[str, torch.Tensor]:
    tok = _tokenizer(state, args)
    texts = args["texts"]
    pairs = args["textPairs"]
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"textPairs: {len(pairs)} pairs for {len(texts)} texts")
    options = _length_options(args)
    encoding = tok(texts, pairs, return_tensors="pt", **options)
    return _as_int64(encoding)


def align_labels(word_ids: list[int | None], labels: list[int] | None, label_all_subwords: bool) -> list[int]:
    """Word labels onto tokens: the first sub-token of each word gets its label; other sub-tokens get the label
    too when `label_all_subwords`, else -100; special and padding tokens get -100."""
    out: list[int] = []
    previous: int | None = None
    for w in word_ids:
        if w is None or labels is None:
            out.append(IGNORE_INDEX)
        elif w != previous:
            out.append(int(labels[w]))
        else:
            out.append(int(labels[w]) if label_all_subwords else IGNORE_INDEX)
        previous = w
    return out


@op("tokenize_words")
def tokenize_words(state: WorkerState, args: TokenizeWordsArgs) -> dict[str, torch.Tensor]:
    tok = _tokenizer(state, args)
    words = args["words"]
    labels = args["labels"]
    if labels is not None:
        if len(labels) != len(words):
            raise ValueError(f"labels: expected one array per sentence ({len(words)})")
        for i, (ws, ls) in enumerate(zip(words, labels)):
            if len(ls) != len(ws):
                raise ValueError(f"labels[{i}]: {len(ls)} labels for {len(ws)} words")
    label_all = args["labelAllSubwords"]
    options = _length_options(args)
    encoding = tok(words, is_split_into_words=True, return_tensors="pt", **options)
    out = _as_int64(encoding)
    seq_len = out["input_ids"].shape[1]
    word_ids = []
    aligned = []
    for i in range(len(words)):
        ids = encoding.word_ids(i)
        word_ids.append([-1 if w is None else w for w in ids])
        if labels is not None:
            aligned.append(align_labels(ids, labels[i], label_all))
    out["word_ids"] = torch.tensor(word_ids, dtype=torch.int64).reshape(len(words), seq_len)
    if labels is not None:
        out["labels"] = torch.tensor(aligned, dtype=torch.int64).reshape(len(words), seq_len)
    return out
