"""A byte-level BPE tokenizer trained with Hugging Face `tokenizers` (a dependency of transformers), for the LM demo.

Called from TypeScript with worker.runPython("examples/shared/bpe_tokenizer.py:<function>", args).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

END_OF_TEXT = "<|endoftext|>"


def train(text_path: str, start: int, end: int, out_dir: str, vocab_size: int) -> dict[str, int]:
    """Trains on characters [start, end) of the file and saves a PreTrainedTokenizerFast folder into out_dir."""
    text = Path(text_path).read_text(encoding="utf-8")[start:end]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(text.splitlines(keepends=True), trainer)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=END_OF_TEXT).save_pretrained(out_dir)
    return {"vocabSize": tokenizer.get_vocab_size()}


@lru_cache(maxsize=4)
def _load(tokenizer_dir: str) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)


def encode(tokenizer_dir: str, text_path: str, start: int, end: int) -> torch.Tensor:
    """The token ids (int64, 1-D) of characters [start, end) of the file."""
    text = Path(text_path).read_text(encoding="utf-8")[start:end]
    return torch.tensor(_load(tokenizer_dir)(text)["input_ids"], dtype=torch.long)


def decode(tokenizer_dir: str, ids: list[int]) -> str:
    return _load(tokenizer_dir).decode(ids)
