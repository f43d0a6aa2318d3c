"""The largest absolute difference between two safetensors files over their common keys, and their key sets.

Compares in float64, so any difference shows. Called as ``python compare_weights.py A B``; prints JSON
``{"maxDiff": float, "common": number of common keys, "onlyA": [keys only in A], "onlyB": [keys only in B]}``.
"""

import json
import sys
from typing import Any

from safetensors.torch import load_file


def main(path_a: str, path_b: str) -> dict[str, Any]:
    a, b = load_file(path_a), load_file(path_b)
    common = sorted(set(a) & set(b))
    diff = max((float((a[k].double() - b[k].double()).abs().max()) for k in common if a[k].numel()), default=0.0)
    return {"maxDiff": diff, "common": len(common), "onlyA": sorted(set(a) - set(b)), "onlyB": sorted(set(b) - set(a))}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
