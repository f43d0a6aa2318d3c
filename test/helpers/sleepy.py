"""A call that keeps the worker busy, for tests that interrupt it."""

import time


def sleep(seconds: float) -> None:
    time.sleep(seconds)
