"""Entries (a layer on one backend in one dtype) checked by a front end's task function, in a
``WorkerPool`` or, to debug, in this process; each comes back as a ``report.Entry``.

A task that gives no value becomes an entry of its own: ``crashed`` (its worker process died:
the signal or exit code), ``timeout`` (it made no progress mark for the check's time limit plus
a grace period, in which the check's own timer should have stopped the layer, and was killed),
or ``crashed`` after a ``fork()``; each names the layer and the last stage it reached.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .._ground import invoke
from .._ground.vocabulary import dtype_problem
from ..errors import InvalidArgument
from ..registry import LayerSpec
from ..report import CRASHED, TIMEOUT, Entry
from .pool import FORKED, RAISED, Outcome, Task, WorkerPool
from .pool import TIMEOUT as KILLED
from .streams import stdout_to_stderr

GRACE_MIN, GRACE_MAX = 2.0, 30.0  # seconds the check's own timer gets before the kill


def check_one(spec: LayerSpec, backend: str, dtype: str, options: dict[str, Any]) -> Entry:
    """Property-test one layer on one backend and dtype; a harness-level problem (no cases, a
    strategy that cannot draw a case, an invalid setting) becomes an ``error`` entry."""
    from .._property.run import property_check

    problem = dtype_problem(backend, dtype)
    if problem is not None:  # (bfloat16 asked for on NumPy beside torch): not this backend's
        return Entry.skipped(spec.name, backend, dtype, problem)
    started = time.perf_counter()
    try:
        result = property_check(spec, backend=backend, dtypes=[dtype], **options)
    except BaseException as exc:  # the layer's strategy may raise anything, SystemExit included
        if isinstance(exc, KeyboardInterrupt) and invoke.INTERRUPTS_PASS:
            raise  # Ctrl-C in this process (in a worker, only the layer can have raised it)
        reason = _harness_error(spec, exc)
        return Entry.errored(spec.name, backend, dtype, reason, time.perf_counter() - started)
    return Entry.from_result(result, dtype=dtype, seconds=time.perf_counter() - started)


def _harness_error(spec: LayerSpec, exc: BaseException) -> str:
    from hypothesis.errors import FailedHealthCheck, Unsatisfiable

    first = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, InvalidArgument):
        return first
    if isinstance(exc, (Unsatisfiable, FailedHealthCheck)):
        return (
            f"layer {spec.name!r}: its cases strategy could not produce a case; accepted: a strategy of "
            f"gk.Case that builds valid configurations directly instead of filtering ({type(exc).__name__}: "
            f"{first})"
        )
    return f"layer {spec.name!r}: drawing or checking a case raised {type(exc).__name__}: {first}"


@dataclass(frozen=True)
class Job:
    """One entry to check: what it is, and the task function's arguments."""

    layer: str
    backend: str
    dtype: str | None
    args: tuple[Any, ...]

    def what(self) -> dict[str, Any]:
        return {"layer": self.layer, "backend": self.backend, "dtype": self.dtype}


def grace(timeout: float) -> float:
    return min(max(GRACE_MIN, timeout / 2), GRACE_MAX)


def quiet_limit(timeout: float | None) -> float | None:
    """How long a worker may go without a progress mark before it is killed (None: no limit)."""
    return None if timeout is None else timeout + grace(timeout)


def check_entries(
    jobs: Sequence[Job],
    task: Callable[..., dict[str, Any]],
    *,
    pool: WorkerPool | None,
    timeout: float | None,
) -> Iterator[tuple[int, Entry]]:
    """(index in ``jobs``, entry) for every job, as each finishes: ``task(*job.args)`` returns
    the entry's JSON. Without a pool, in this process, one after the other, with fd 1 on stderr."""
    if pool is None:
        for index, job in enumerate(jobs):
            with stdout_to_stderr():
                data = task(*job.args)
            yield index, Entry.from_dict(data)
        return
    tasks = [Task(index, task, job.args, quiet_limit(timeout)) for index, job in enumerate(jobs)]
    for outcome in pool.run(tasks):
        yield outcome.key, entry_of(jobs[outcome.key], outcome, timeout)


def entry_of(job: Job, outcome: Outcome, timeout: float | None) -> Entry:
    """The entry a task's outcome makes."""
    if outcome.failure is None:
        return Entry.from_dict(outcome.value)
    status = TIMEOUT if outcome.failure == KILLED else CRASHED
    return Entry.lost(
        job.layer, job.backend, job.dtype, status, lost_reason(job, outcome, timeout), outcome.seconds
    )


def lost_reason(job: Job, outcome: Outcome, timeout: float | None) -> str:
    """Why an entry has no verdict, naming the layer and the last stage it reached."""
    stage = f"during {outcome.stage!r}" if outcome.stage else "before its first stage"
    layer = f"layer {job.layer!r} [{job.backend}, {job.dtype or '-'}]"
    if outcome.failure == KILLED:
        limit = f"timeout={timeout:g} s, then {grace(timeout):g} s of grace" if timeout is not None else "-"
        return (
            f"{layer} made no progress for {outcome.detail} {stage} ({limit}; it ignores the check's "
            "own timer, e.g. by catching every exception): its worker process was killed"
        )
    if outcome.failure == FORKED:
        return (
            f"{layer} called fork() {stage}: the child was ended at once (it would have run the rest of "
            "the check and reported twice), so the entry has no verdict"
        )
    if outcome.failure == RAISED:
        return f"{layer}: an exception escaped the check {stage}: {outcome.detail}"
    return f"{layer} crashed its worker process: it ended with {outcome.detail} {stage}"
