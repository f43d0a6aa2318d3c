"""losses.json: the built-in losses with their metadata, which the TypeScript config validation reads.

Regenerate it after adding or changing a built-in loss (a test checks it is current):
    python -m textbrewer_worker.loss_catalogue
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .builtin_losses import BUILTIN_LOSSES
from .losses import SPARSE_KD_LOSSES, LossInfo
from .sampled_cache_form import SAMPLED_KD_LOSSES

CATALOGUE_PATH = Path(__file__).with_name("losses.json")


def entry(info: LossInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "kind": info.kind,
        "layers": info.layers,
        "features": list(info.features),
        "mask": info.mask,
        # kd losses that learn from top-k teacher targets (teacherCache.topK)
        "sparse": info.kind == "kd" and info.name in SPARSE_KD_LOSSES,
        # kd losses that learn from sampled teacher targets (teacherCache.samples), as unbiased estimates
        "sampled": info.kind == "kd" and info.name in SAMPLED_KD_LOSSES,
    }


def render(infos: Iterable[LossInfo] = BUILTIN_LOSSES) -> str:
    return json.dumps({"losses": [entry(i) for i in infos]}, indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = CATALOGUE_PATH.read_text(encoding="utf-8") if CATALOGUE_PATH.exists() else ""
        if current != text:
            print(f"{CATALOGUE_PATH.name} is stale: run python -m textbrewer_worker.loss_catalogue", file=sys.stderr)
            return 1
        return 0
    tmp = CATALOGUE_PATH.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(CATALOGUE_PATH)
    print(f"wrote {CATALOGUE_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
