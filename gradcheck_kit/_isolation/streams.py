"""File descriptor 1 pointed at stderr while layers run in this process (``--no-isolation``),
so that ``print`` and C-level ``printf`` in a layer never mix into a report on stdout."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Inside the block, whatever is written to fd 1 (or ``sys.stdout``) goes to stderr."""
    _flush()
    saved = _dup(1)
    if saved is None:  # no fd 1 at all (a closed stdout): nothing to protect
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _flush()  # C's buffer holds what a layer printed: it belongs to stderr
        os.dup2(saved, 1)
        os.close(saved)


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:
        return None


def _flush() -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):
        return
    if hasattr(libc, "fflush"):
        libc.fflush(None)
