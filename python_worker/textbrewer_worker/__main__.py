"""`python -m textbrewer_worker --endpoint ENDPOINT [--device DEVICE]`; the token comes in TEXTBREWER_WORKER_TOKEN."""

from __future__ import annotations

import argparse
import os
import sys


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
    args = parser.parse_args()
    token = os.environ.pop("TEXTBREWER_WORKER_TOKEN", "")
    if len(token) < 16:
        sys.stderr.write(
            "textbrewer_worker: TEXTBREWER_WORKER_TOKEN is missing; start the worker through Worker.start()\n"
        )
        return 2
    from .server import serve

    try:
        serve(args.endpoint, token, args.device, max(0, args.spin_us))
    except (
        ValueError
    ) as exc:  # configuration errors (e.g. an unavailable device): one clear line, no traceback
        sys.stderr.write(f"textbrewer_worker: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
