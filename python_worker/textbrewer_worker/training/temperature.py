"""Per-batch KD temperature functions: constant, flsw, cwsm.

Each is called as f(logits_S, logits_T, base) after logits masking and probability shift. flsw and cwsm
return a detached tensor τ of shape logits.shape[:-1] (float32 for half-precision logits); their `mean`
runs over every row of the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Tensor = torch.Tensor
TemperatureFn = Callable[[Tensor, Tensor, float], float | Tensor]

__all__ = ["TemperatureFn", "build_temperature", "constant", "cwsm", "flsw"]


def _up(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def constant(logits_S: Tensor, logits_T: Tensor, base: float) -> float:
    """Returns base."""
    return base


@torch.no_grad()
def flsw(logits_S: Tensor, logits_T: Tensor, base: float, beta: float, gamma: float, eps: float = 1e-4) -> Tensor:
    """v = s/(‖s‖+eps), t̂ = t/(‖t‖+eps), w = (1 − Σ v·t̂)^gamma, τ = base + (mean(w) − w)·beta."""
    s, t = _up(logits_S.detach()), _up(logits_T.detach())
    v = s / (torch.norm(s, dim=-1, keepdim=True) + eps)
    t_hat = t / (torch.norm(t, dim=-1, keepdim=True) + eps)
    w = torch.pow(1 - (v * t_hat).sum(-1), gamma)
    return base + (w.mean() - w) * beta


@torch.no_grad()
def cwsm(logits_S: Tensor, logits_T: Tensor, base: float, beta: float) -> Tensor:
    """w = 1/(max softmax(s) + 1e-3), τ = base + (mean(w) − w)·beta (student only)."""
    s = _up(logits_S.detach())
    w = 1 / (torch.softmax(s, dim=-1).max(dim=-1).values + 1e-3)
    return base + (w.mean() - w) * beta


_PARAMS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys)
    "none": (set(), set()),
    "constant": (set(), set()),
    "flsw": ({"beta", "gamma", "eps"}, set()),
    "cwsm": ({"beta"}, set()),
}


def build_temperature(spec: dict[str, Any]) -> TemperatureFn:
    """Resolve {"type": "none"|"constant"|"flsw"|"cwsm", ...params} to f(logits_S, logits_T, base)."""
    kind = spec.get("type")
    if kind not in _PARAMS:
        raise ValueError(f"temperature: unknown type {kind!r}; expected one of {', '.join(_PARAMS)}")
    required, optional = _PARAMS[kind]
    params = {k: v for k, v in spec.items() if k != "type"}
    missing = required - params.keys()
    unknown = params.keys() - required - optional
    if missing:
        raise ValueError(f"temperature {kind}: missing {', '.join(sorted(missing))}")
    if unknown:
        raise ValueError(f"temperature {kind}: unknown key(s) {', '.join(sorted(unknown))}")
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"temperature {kind}: {key} must be a number, got {value!r}")
    if kind == "flsw":
        beta, gamma, eps = float(params["beta"]), float(params["gamma"]), float(params["eps"])
        return lambda logits_S, logits_T, base: flsw(logits_S, logits_T, base, beta, gamma, eps)
    if kind == "cwsm":
        beta = float(params["beta"])
        return lambda logits_S, logits_T, base: cwsm(logits_S, logits_T, base, beta)
    return constant
