"""Shared setup of the worker's tests.

- Puts python_worker/ on sys.path so the tests import textbrewer_worker from any working directory.
- No test can wait forever: each phase of a test (setup, call, teardown) runs under a time limit
  (TEXTBREWER_PYTEST_TIMEOUT seconds, default 120; `@pytest.mark.timeout_s(n)` for one test; 0: none).
  Past it, SIGALRM raises TestTimeoutError where the test is, so it fails with its traceback and the run
  goes on. A hang that never returns to the interpreter (a blocking C call that retries on EINTR) cannot
  raise: GRACE_S later a watchdog thread prints every thread's stack to the real stderr (capture
  suspended) and ends the process.
- Leaves nothing in the temp folder: tmp_path and friends live in a folder of this run, removed at its end.
"""

import faulthandler
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
if _PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, _PACKAGE_ROOT)

TIMEOUT_ENV = "TEXTBREWER_PYTEST_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0
GRACE_S = 5.0


class TestTimeoutError(Exception):
    """A test phase ran past its time limit."""

    __test__ = False  # not a test class, whatever its name


def _limit_s(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout_s")
    if marker is not None:
        return float(marker.args[0])
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        message = f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds (0 turns the limit off)"
        raise pytest.UsageError(message) from None


@contextmanager
def _time_limit(item: pytest.Item, phase: str) -> Iterator[None]:
    seconds = _limit_s(item)
    if seconds <= 0:
        yield
        return
    # SIGALRM is POSIX-only and delivered to the main thread; elsewhere only the faulthandler backstop applies
    use_alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()

    def on_alarm(signum: int, frame: object) -> None:
        raise TestTimeoutError(
            f"{item.nodeid} ({phase}) ran past its time limit of {seconds:g} s "
            f"(set by {TIMEOUT_ENV} or @pytest.mark.timeout_s)"
        )

    previous = signal.signal(signal.SIGALRM, on_alarm) if use_alarm else None
    if use_alarm:
        signal.setitimer(signal.ITIMER_REAL, seconds)
    watchdog = threading.Timer(seconds + GRACE_S, _give_up, args=(item, phase, seconds))
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _give_up(item: pytest.Item, phase: str, seconds: float) -> None:
    """The alarm did not end the phase: show where every thread is, then end the process (it cannot go on)."""
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)  # as pytest's debugger does, so this reaches the terminal
    sys.stderr.write(
        f"\n{item.nodeid} ({phase}) is still running {GRACE_S:g} s past its time limit of {seconds:g} s, "
        "which could not interrupt it (stuck outside the interpreter). Stacks of every thread:\n"
    )
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _time_limit(item, "setup"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _time_limit(item, "call"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    with _time_limit(item, "teardown"):
        return (yield)


_OWN_BASETEMP = "_textbrewer_own_basetemp"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "timeout_s(seconds): time limit of each phase of this test (0: none)")
    # before the tmpdir plugin reads it: tmp_path folders go under a folder of this run instead of the kept
    # pytest-of-<user>/pytest-<n> ones
    if config.option.basetemp is None:
        own = tempfile.mkdtemp(prefix="tbts-pytest-")
        config.option.basetemp = own
        setattr(config, _OWN_BASETEMP, own)


def pytest_unconfigure(config: pytest.Config) -> None:
    own = getattr(config, _OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)
