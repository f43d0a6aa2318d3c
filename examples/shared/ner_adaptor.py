"""The NER example's adaptor with KD on words only, for examples/ner.ts (``kdPositions: "words"``).

The select adaptor of examples/ner.ts gives ``logits_mask = attention_mask``: KD on every real token, [CLS], [SEP]
and a word's later sub-tokens included. Scoring reads a word's tag at its first sub-token only, the positions whose
label is not -100, so this adaptor masks KD to those positions.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100


def word_starts(batch: dict[str, Any], outputs: Any) -> dict[str, Any]:
    return {
        "logits": outputs.logits,
        "logits_mask": (batch["labels"] != IGNORE_INDEX).to(batch["attention_mask"].dtype),
        "hidden": outputs.hidden_states,
        "inputs_mask": batch["attention_mask"],
        "losses": outputs.loss,
    }
