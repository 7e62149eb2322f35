"""A per-check time limit that stops a hanging layer.

In the main thread on POSIX a SIGALRM timer raises ``CheckTimeout`` even inside ``time.sleep``;
elsewhere the exception is injected into the checking thread (``PyThreadState_SetAsyncExc``),
which stops Python-level loops. Neither can interrupt one long C call (a single huge BLAS
product): the limit then takes effect as soon as that call returns.
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


def validate(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise InvalidArgument(f"timeout={seconds!r} must be a positive number of seconds (or None)")
    return float(seconds)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise CheckTimeout in this thread once ``seconds`` have passed inside the block."""
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
