"""`python -m textbrewer_worker --endpoint ENDPOINT [--device DEVICE]`; the token comes in TEXTBREWER_WORKER_TOKEN."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial


def main() -> int:
    parser = argparse.ArgumentParser(prog="textbrewer_worker")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--spin-us",
        type=int,
        default=0,
        help="microseconds to busy-poll for the next request before blocking",
    )
    parser.add_argument(
        "--max-message-size", type=int, default=-1, help="largest frame either side accepts, bytes (-1: no limit)"
    )
    parser.add_argument("--private-dir", default=None, help="folder of the ipc socket, removed when stdin closes")
    parser.add_argument(
        "--distributed",
        default=None,
        metavar="BACKEND",
        help="run as a rank under torch.distributed.run (auto, gloo or nccl); --endpoint is then a JSON list, one "
        "per local rank, and TEXTBREWER_WORKER_TOKEN a JSON list of their tokens",
    )
    parser.add_argument("--collective-timeout-s", type=float, default=600.0, help="torch collective timeout, seconds")
    parser.add_argument(
        "--strategy", default="ddp", help="how a rank trains the student: ddp (replicated) or fsdp (sharded, FSDP2)"
    )
    args = parser.parse_args()
    token = os.environ.pop("TEXTBREWER_WORKER_TOKEN", "")
    endpoint = args.endpoint
    join_group = None
    if args.distributed is not None:
        from .wire.rank_link import pick_rank_link

        endpoint, token = pick_rank_link(args.endpoint, token)
        join_group = partial(_join_group, args.distributed, args.collective_timeout_s, args.strategy)
    if len(token) < 16:
        sys.stderr.write(
            "textbrewer_worker: TEXTBREWER_WORKER_TOKEN is missing; start the worker through Worker.start()\n"
        )
        return 2
    curve_server_key = os.environ.pop("TEXTBREWER_WORKER_CURVE_SERVER_KEY", "") or None
    import zmq

    if curve_server_key and not zmq.has("curve"):
        sys.stderr.write(
            f"textbrewer_worker: curve: this pyzmq (libzmq {zmq.zmq_version()}) has no CURVE support; "
            "start the worker without curve or install a pyzmq built with libsodium\n"
        )
        return 2
    from .wire.server import LinkOptions, serve

    link = LinkOptions(max_message_size=args.max_message_size, curve_server_key=curve_server_key)
    try:
        serve(endpoint, token, args.device, max(0, args.spin_us), link, args.private_dir, join_group)
        if join_group is not None:
            from .training.distributed import leave_group

            leave_group()
            # a rank's interpreter can hang in its teardown after the process group is gone: nothing is left to do
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    except ValueError as exc:  # configuration errors (e.g. an unavailable device): one clear line, no traceback
        sys.stderr.write(f"textbrewer_worker: {exc}\n")
        return 2
    return 0


def _join_group(backend: str, timeout_s: float, strategy: str, device: str) -> str:
    from .training.distributed import join_group

    return join_group(backend, device, timeout_s, strategy)


if __name__ == "__main__":
    sys.exit(main())
