"""The worker process: it takes ``(function, args)`` from its pipe, runs it, sends back what
came of it, and repeats until told to stop (``None``) or its parent goes away.

Before the first task it makes the process safe to hand to a layer:

- file descriptor 1 points at stderr, so ``print`` and C-level ``printf`` in a layer never reach
  the stdout that carries the parent's report;
- SIGINT is ignored: Ctrl-C reaches the whole process group, and the parent, which handles it,
  stops the workers itself (a KeyboardInterrupt seen here can then only come from the layer,
  and becomes the layer's finding);
- on Linux the process is killed when its parent dies, so a killed run leaves no busy workers;
- a ``fork()`` in a layer ends the child at once (it would otherwise run the rest of the check
  and report a second time) and marks the task's outcome as forked;
- every stage mark of the check (``_ground.progress``) goes to memory shared with the parent: the
  last one names where a crash happened, and a changing count shows the task is alive (so does
  every module imported: a layer's first call may import torch, which takes seconds).

The process ends with ``os._exit``: a non-daemon thread a layer started cannot hold it open.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import struct
import sys
import tempfile
import traceback
from typing import Any

from .._ground import invoke, progress

STAGE_BYTES = 240
IMPORTING = "importing"  # the stage of a worker importing layer modules (it may take long)
_forks: list[int] = []


class Board:
    """The stage a worker is in and how many marks it made, in a small file both processes map
    into memory (plain bytes: a mark is two writes to memory, and nothing about it needs to be
    pickled but the file's path)."""

    SIZE = 8 + STAGE_BYTES

    def __init__(self, path: str) -> None:
        self.path, self.linked = path, True
        with open(path, "r+b") as handle:
            self.memory = mmap.mmap(handle.fileno(), self.SIZE)

    @classmethod
    def create(cls) -> Board:
        handle, path = tempfile.mkstemp(prefix="gradcheck-kit-worker-")
        try:
            os.ftruncate(handle, cls.SIZE)
        finally:
            os.close(handle)
        return cls(path)

    def mark(self, stage: str) -> None:
        text = stage.encode("utf-8", "replace")[: STAGE_BYTES - 1] + b"\0"
        self.memory[8 : 8 + len(text)] = text
        struct.pack_into("<Q", self.memory, 0, self.marks() + 1)

    def beat(self) -> None:
        """A sign of life that keeps the stage (a module imported)."""
        struct.pack_into("<Q", self.memory, 0, self.marks() + 1)

    def stage(self) -> str:
        text = self.memory[8 : 8 + STAGE_BYTES]
        return text[: text.find(b"\0") if b"\0" in text else None].decode("utf-8", "replace")

    def marks(self) -> int:
        return int(struct.unpack_from("<Q", self.memory, 0)[0])

    def forget(self) -> None:
        """Remove the file (the mappings stay valid), once."""
        if self.linked:
            self.linked = False
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def serve(conn: Any, board_path: str) -> None:
    """The worker's main loop (the target of its ``multiprocessing.Process``)."""
    board = Board(board_path)
    _detach(board)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the parent went away
            break
        if task is None:
            break
        reply = _run(board, *task)
        _flush()
        try:
            conn.send(reply)
        except (EOFError, OSError):
            break
        except Exception as exc:  # the value cannot be pickled
            conn.send(("raised", f"its result could not be sent back: {type(exc).__name__}: {exc}"))
    _flush()
    os._exit(0)


def _run(board: Board, fn: Any, args: tuple[Any, ...]) -> tuple[str, Any]:
    board.mark("starting")
    _forks.clear()
    try:
        reply: tuple[str, Any] = ("done", fn(*args))
    except BaseException as exc:  # the task's own guard failed: say what escaped it
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        reply = ("raised", "".join(lines[-3:]).strip())
    if _forks:
        reply = ("forked", f"it called fork() {len(_forks)} time(s); the child was ended at once")
    return reply


def _detach(board: Board) -> None:
    os.dup2(2, 1)
    sys.stdout = sys.stderr  # (buffered text on the old stdout would be lost at os._exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    invoke.INTERRUPTS_PASS = False
    progress.listen(board.mark)
    sys.meta_path.insert(0, _Heartbeat(board))
    _die_with_parent()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_parent=lambda: _forks.append(1), after_in_child=_forked_child)


class _Heartbeat:
    """A meta path finder that finds nothing: it only counts each import as progress."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        self.board.beat()


def _forked_child() -> None:
    os._exit(0)


def _libc() -> Any:
    try:
        return ctypes.CDLL(None)
    except (OSError, TypeError):  # no C library to speak of (Windows)
        return None


_LIBC = _libc()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux") and _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _flush() -> None:
    """Python's and C's buffered output, before the process ends or replies."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if _LIBC is not None and hasattr(_LIBC, "fflush"):
        _LIBC.fflush(None)
