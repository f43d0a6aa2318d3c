"""Which of the launch's links a rank uses: torchrun starts every local rank with the same arguments, so the
endpoints and tokens of all of them arrive as JSON lists and LOCAL_RANK picks one."""

from __future__ import annotations

import json
import os


def pick_rank_link(endpoints: str, tokens: str) -> tuple[str, str]:
    """(endpoint, token) of this local rank; ValueError naming what is wrong."""
    local_rank = int(os.environ.get("LOCAL_RANK", "-1"))
    try:
        endpoint_list = json.loads(endpoints)
        token_list = json.loads(tokens)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--endpoint and TEXTBREWER_WORKER_TOKEN: expected JSON lists under --distributed ({exc})")
    if not isinstance(endpoint_list, list) or not isinstance(token_list, list):
        raise ValueError("--endpoint and TEXTBREWER_WORKER_TOKEN: expected JSON lists under --distributed")
    if not 0 <= local_rank < min(len(endpoint_list), len(token_list)):
        raise ValueError(
            f"LOCAL_RANK {local_rank}: the launch has {len(endpoint_list)} endpoints; start the ranks through "
            "Worker.start({ distributed: { nprocPerNode } }) with the same nprocPerNode as torchrun"
        )
    return str(endpoint_list[local_rank]), str(token_list[local_rank])
