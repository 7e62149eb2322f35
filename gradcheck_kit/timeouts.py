"""A per-check time limit that stops a hanging layer.

In the main thread on POSIX a SIGALRM timer raises ``CheckTimeout`` even inside ``time.sleep``;
elsewhere the exception is injected into the checking thread (``PyThreadState_SetAsyncExc``),
which stops Python-level loops. Neither can interrupt one long C call (a single huge BLAS
product): the limit then takes effect as soon as that call returns.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import CheckTimeout, InvalidArgument


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


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
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
        if not done.wait(seconds):
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(CheckTimeout))

    watcher = threading.Thread(target=watch, name="gradcheck-timeout", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
