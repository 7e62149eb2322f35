"""A pool of worker processes that survives whatever a task does to its worker.

``WorkerPool(size).run(tasks)`` sends each ``Task`` to an idle worker (``spawn`` start method:
a fresh interpreter, nothing inherited from the parent but its ``sys.path`` and working
directory) and yields one ``Outcome`` per task as soon as it is known, in the order they
finish. A worker that dies (a signal, ``os._exit`` with any code) gives a ``crashed`` outcome,
one whose task made no progress mark for ``Task.quiet_limit`` seconds is killed and gives a
``timeout`` outcome, one that forked gives a ``forked`` outcome: each names the last stage the
task reached, and the worker is replaced before the next task. Nothing else is affected.

``multiprocessing.Pool`` and ``concurrent.futures`` cannot do this: the first waits forever for a
task whose worker died, the second breaks the whole pool, and neither can stop one task.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from .worker import IMPORTING, Board, serve

CRASHED, TIMEOUT, FORKED, RAISED = "crashed", "timeout", "forked", "raised"
POLL_SECONDS = 0.2  # how often a busy worker's progress marks are looked at
STOP_SECONDS = 2.0  # how long a worker told to stop may take before it is killed
IMPORT_SECONDS = 300.0  # how long a worker may be quiet while it imports the layers


@dataclass(frozen=True)
class Task:
    """``fn(*args)`` in a worker; ``fn`` must be a module-level function (sent by name)."""

    key: Any
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    quiet_limit: float | None = None  # seconds without a progress mark before the kill


@dataclass
class Outcome:
    """What came of a task: ``value`` when ``failure`` is None, else why there is none, with
    the last stage the task reached and a ``detail``: ``crashed`` (how the process ended:
    ``exit code 0``, ``signal 11 (SIGSEGV)``), ``timeout`` (how long it was quiet: ``2.5 s``),
    ``forked`` (how often), ``raised`` (the exception that escaped the task)."""

    key: Any
    value: Any = None
    failure: str | None = None
    detail: str = ""
    stage: str = ""
    seconds: float = 0.0


class _Worker:
    def __init__(self, context: Any) -> None:
        self.board = Board.create()
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, self.board.path), name="gradcheck-kit worker", daemon=True
        )
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.started = self.quiet_since = 0.0
        self.marks = 0

    def begin(self, task: Task) -> None:
        self.task, self.marks = task, self.board.marks()
        self.started = self.quiet_since = time.monotonic()
        self.conn.send((task.fn, task.args))

    def finish(self, **fields: Any) -> Outcome:
        assert self.task is not None
        if self.board.marks():
            self.board.forget()  # the worker has it mapped: the file can go
        outcome = Outcome(self.task.key, seconds=time.monotonic() - self.started, **fields)
        self.task = None
        return outcome

    def stalled(self, now: float) -> bool:
        """Whether the task made no progress mark for longer than it may (a worker starting up
        and one importing a layer's modules, torch among them, may take longer than any check:
        they get IMPORT_SECONDS)."""
        assert self.task is not None
        if self.board.marks() != self.marks:
            self.marks, self.quiet_since = self.board.marks(), now
            self.board.forget()  # the worker has it mapped: the file can go
        limit = self.task.quiet_limit
        if limit is not None and (self.marks == 0 or self.board.stage().startswith(IMPORTING)):
            limit = max(limit, IMPORT_SECONDS)
        return limit is not None and now - self.quiet_since > limit

    def stop(self, *, kill: bool) -> None:
        if not kill and self.process.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(STOP_SECONDS)
        self.conn.close()
        self.board.forget()


class WorkerPool:
    """``size`` worker processes, started on first use; a context manager that stops them."""

    def __init__(self, size: int = 1) -> None:
        self.size = max(1, int(size))
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def run(self, tasks: Iterable[Task]) -> Iterator[Outcome]:
        """One outcome per task, as each finishes. Closing the iterator early (an interrupt)
        kills the workers still busy."""
        queue = deque(tasks)
        try:
            while queue or self._busy():
                yield from self._start(queue)
                yield from self._collect()
        finally:
            for worker in self._busy():  # stopped early: these cannot be waited for
                self._retire(worker, kill=True)

    def call(self, fn: Callable[..., Any], *args: Any, quiet_limit: float | None = None) -> Outcome:
        """One task, waited for."""
        return next(iter(self.run([Task(None, fn, args, quiet_limit)])))

    def warm(self, count: int | None = None) -> None:
        """Start ``count`` workers (default: all) now, so that they import while the parent
        prepares the tasks."""
        while len(self.workers) < min(self.size, count or self.size):
            self.workers.append(_Worker(self.context))

    def close(self) -> None:
        """Stop every worker (the busy ones are killed)."""
        for worker in list(self.workers):
            self._retire(worker, kill=worker.task is not None)

    # -- inside ----------------------------------------------------------------------------------

    def _busy(self) -> list[_Worker]:
        return [w for w in self.workers if w.task is not None]

    def _start(self, queue: deque[Task]) -> Iterator[Outcome]:
        self.warm(len(queue) + len(self._busy()))
        for worker in list(self.workers):
            if worker.task is None and queue:
                try:
                    worker.begin(queue.popleft())
                except OSError:  # it died before it could take the task
                    yield self._crashed(worker)

    def _collect(self) -> Iterator[Outcome]:
        busy = self._busy()
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], POLL_SECONDS))
        now = time.monotonic()
        for worker in busy:
            if worker.conn in ready or worker.conn.poll():
                yield self._received(worker)
            elif worker.process.sentinel in ready:
                yield self._crashed(worker)
            elif worker.stalled(now):
                quiet = now - worker.quiet_since
                yield self._ended(worker, TIMEOUT, f"{quiet:.3g} s", kill=True)

    def _received(self, worker: _Worker) -> Outcome:
        try:
            kind, value = worker.conn.recv()
        except (EOFError, OSError):  # it died while sending: a crash after all
            return self._crashed(worker)
        except Exception as exc:  # sent, but not readable here
            return self._ended(
                worker, RAISED, f"its result could not be read: {exc!r}", kill=False, keep=True
            )
        if kind == "done":
            return worker.finish(value=value)
        return self._ended(worker, kind, str(value), kill=False, keep=kind == RAISED)

    def _crashed(self, worker: _Worker) -> Outcome:
        worker.process.join(STOP_SECONDS)
        return self._ended(worker, CRASHED, exit_words(worker.process.exitcode))

    def _ended(
        self, worker: _Worker, failure: str, detail: str, *, kill: bool = True, keep: bool = False
    ) -> Outcome:
        """The outcome of a task that gave no value; the worker is retired unless ``keep``
        (a forked or killed one's state is suspect)."""
        outcome = worker.finish(failure=failure, detail=detail, stage=worker.board.stage())
        if not keep:
            self._retire(worker, kill=kill)
        return outcome

    def _retire(self, worker: _Worker, *, kill: bool) -> None:
        worker.stop(kill=kill)
        worker.task = None
        self.workers.remove(worker)


def exit_words(code: int | None) -> str:
    """``exit code 3``, ``signal 11 (SIGSEGV)``, for a process's ``exitcode``."""
    if code is None:
        return "an unknown exit"
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
