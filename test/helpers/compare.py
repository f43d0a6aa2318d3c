"""Prints the largest absolute difference between two safetensors files over their common keys (and the key sets)."""

import json
import sys

from safetensors.torch import load_file

a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
common = sorted(set(a) & set(b))
diff = max((float((a[k].double() - b[k].double()).abs().max()) for k in common if a[k].numel()), default=0.0)
print(
    json.dumps(
        {"maxDiff": diff, "common": len(common), "onlyA": sorted(set(a) - set(b)), "onlyB": sorted(set(b) - set(a))}
    )
)
