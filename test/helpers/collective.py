"""Collectives called on one rank alone, for tests of a group whose ranks disagree."""

import torch
import torch.distributed as dist


def all_reduce() -> float:
    tensor = torch.ones(1)
    dist.all_reduce(tensor)
    return float(tensor.item())
