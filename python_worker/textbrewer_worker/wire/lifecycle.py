"""Process lifetime: the stdin lifeline, signals, parent-death signal."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable


def start_lifeline(private_dir: str | None = None) -> None:
    """Exits the process when the parent closes our stdin (it died, even by SIGKILL), first removing private_dir:
    the folder Node made for the ipc socket, which nobody else would remove after a SIGKILL.

    os.read on the raw fd, not sys.stdin: a daemon thread blocked in a buffered read aborts interpreter shutdown.
    """

    def watch() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)
        os._exit(0)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
    # Library code (a prompt such as transformers' "run the custom code? [y/N]") must never read the lifeline:
    # it gets end-of-file at once instead of waiting on, and consuming, Node's pipe.
    sys.stdin = open(os.devnull)  # noqa: SIM115 - kept open for the life of the process


def install_signal_handlers(on_term: Callable[[], None]) -> None:
    # Node owns Ctrl-C: it sends `shutdown`, then SIGTERM, then SIGKILL.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: on_term())
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        except OSError:
            pass
