"""What ``transformers.pipeline("text-classification", model=FOLDER)`` makes of an exported folder, loaded as is.

Called as ``python pipeline_logits.py FOLDER TEXTS_JSON``; prints JSON ``{"logits": [[...]] (the pipeline's model on the
pipeline's tokenizer, padded to the longest text), "labels": [top label per text], "id2label": {...}, "model": class
name, "tokenizer": class name}``.
"""

import json
import sys
from typing import Any

import torch
from transformers import pipeline


def main(folder: str, texts: list[str]) -> dict[str, Any]:
    pipe = pipeline("text-classification", model=folder, device="cpu")
    with torch.no_grad():
        encoded = pipe.tokenizer(texts, return_tensors="pt", padding="longest", truncation=True)
        logits = pipe.model(**encoded).logits
    return {
        "logits": logits.tolist(),
        "labels": [r["label"] for r in pipe(texts)],
        "id2label": {str(k): v for k, v in pipe.model.config.id2label.items()},
        "model": type(pipe.model).__name__,
        "tokenizer": type(pipe.tokenizer).__name__,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]))))
