"""conftest.py's time limit: a test that hangs fails with its traceback instead of holding up the run."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent / "conftest.py"

HANGING_TESTS = """
import time

import pytest


def test_sleeps_past_the_limit() -> None:
    time.sleep(60)


@pytest.mark.timeout_s(20)
def test_own_longer_limit() -> None:
    time.sleep(1.5)


def test_after_the_hang_still_runs() -> None:
    assert True
"""

UNINTERRUPTIBLE_TEST = """
import signal
import time


def test_blocks_the_alarm() -> None:
    # as a C call that never returns to Python would
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(60)
"""


def run_pytest(folder: Path, source: str, limit: str) -> tuple[subprocess.CompletedProcess[str], float]:
    shutil.copy(CONFTEST, folder / "conftest.py")
    (folder / "test_hanging.py").write_text(source)
    env = {**os.environ, "TEXTBREWER_PYTEST_TIMEOUT": limit}
    start = time.monotonic()
    # the outer timeout keeps this test itself from hanging when the limit does not work
    # its tmp_path folders inside ours: a process ended by the watchdog does not remove them
    args = ["-q", "-p", "no:cacheprovider", f"--basetemp={folder / 'tmp'}", str(folder)]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        check=False,  # the callers read the return code
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
    )
    return result, time.monotonic() - start


def test_a_hanging_test_fails_with_its_traceback_and_the_run_goes_on(tmp_path: Path) -> None:
    result, seconds = run_pytest(tmp_path, HANGING_TESTS, "1")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 failed, 2 passed" in out, out
    assert "test_sleeps_past_the_limit (call) ran past its time limit of 1 s" in out, out
    assert "time.sleep(60)" in out, out  # where it hung
    assert seconds < 30, out


def test_a_hang_the_alarm_cannot_interrupt_ends_the_process_with_every_stack(tmp_path: Path) -> None:
    result, seconds = run_pytest(tmp_path, UNINTERRUPTIBLE_TEST, "1")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "test_blocks_the_alarm (call) is still running 5 s past its time limit of 1 s" in out, out
    assert 'test_hanging.py", line 9 in test_blocks_the_alarm' in out, out
    assert seconds < 30, out
