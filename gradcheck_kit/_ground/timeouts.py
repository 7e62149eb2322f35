"""A per-check time limit that stops a hanging layer.

In the main thread on POSIX a SIGALRM timer raises ``CheckTimeout`` even inside ``time.sleep``;
elsewhere the exception is injected into the checking thread (``PyThreadState_SetAsyncExc``),
which stops Python-level loops. Neither can interrupt one long C call (a single huge BLAS
product): the limit then takes effect as soon as that call returns. (A layer that swallows the
exception in a loop is beyond any in-process limit: the CLI and the pytest plugin run layers in
worker processes and kill one that goes quiet for longer.)

Every positive number of seconds is a limit: a tiny one expires at once (the check then reports
a timeout, like any other), ``inf`` or anything beyond ``NO_LIMIT_ABOVE`` means no limit.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import CheckTimeout, InvalidArgument

NO_LIMIT_ABOVE = 1e8  # seconds (three years): longer limits overflow the timers, and mean none


def validate(seconds: float | None) -> float | None:
    """The limit in seconds, or None for none (given None, ``inf`` or more than
    ``NO_LIMIT_ABOVE``); ``gk.InvalidArgument`` for anything but a positive number."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise InvalidArgument(
            f"timeout={seconds!r} must be a positive number of seconds (or None, or inf: no limit)"
        )
    return float(seconds) if seconds <= NO_LIMIT_ABOVE else None


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise CheckTimeout in this thread once ``seconds`` have passed inside the block. The
    exception can surface anywhere in the block (or as it closes): callers that must return a
    result catch it around the ``with``."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        with _alarm(seconds):
            yield
    else:
        with _watchdog(seconds):
            yield


RETRY_SECONDS = 0.05  # how soon to try again when the limit falls inside an import


def _importing(frame: Any) -> bool:
    """True while ``frame`` or a caller runs the import machinery: an exception raised there can
    leave a C extension half-initialised (torch then crashes the process), so the limit waits."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        if _importing(frame):
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
            return
        raise CheckTimeout(f"the check ran longer than timeout={seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    target = threading.get_ident()
    done = threading.Event()

    def watch() -> None:
        if done.wait(seconds):
            return
        while _importing(sys._current_frames().get(target)):
            if done.wait(RETRY_SECONDS):
                return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(CheckTimeout))

    watcher = threading.Thread(target=watch, name="gradcheck-timeout", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        # an exception the watcher set just as the block ended would surface later, anywhere
        # in the caller: cancel it (None is NULL here: "clear the pending exception")
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)
