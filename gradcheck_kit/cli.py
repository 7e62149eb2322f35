"""``gradcheck-kit``: check registered layers from the command line and report the results.

    gradcheck-kit check reference_layers --backend numpy
    gradcheck-kit check my_layers.py:conv2d --dtype float32 --output report.html --output report.json
    gradcheck-kit check reference_layers --jobs auto
    gradcheck-kit list reference_layers
    gradcheck-kit show report.json --format markdown
    gradcheck-kit merge shard-*.json --output merged.json

Each entry (a layer on one backend in one dtype) is checked in a worker process: a layer that
crashes its process, calls ``os._exit`` or ``fork``, or hangs past its time limit costs only its
own entry (``crashed``/``timeout``, naming the layer and its last stage). Reports are written as
entries finish, and say when a run was interrupted or is incomplete.

Exit codes: 0 every check passed, 1 a gradient or contract failure (or a layer that crashed or
hung), 2 a usage, import or configuration error (the message names the offending value and what
is accepted) or a run that did not finish, 130 interrupted (143 terminated).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ._arguments import backends, build_parser, dtypes
from ._ground.formatting import visible
from ._ground.vocabulary import DEFAULT_TIMEOUT
from ._isolation.entries import Job, check_entries, quiet_limit
from ._isolation.pool import WorkerPool
from ._isolation.streams import stdout_to_stderr
from .errors import GradcheckError, InvalidArgument
from .report import (
    COMPLETE,
    FAILED,
    INCOMPLETE,
    INTERRUPTED,
    PASSED,
    Entry,
    Output,
    ReportWriter,
    Run,
    load,
    output,
    render,
    render_table,
)

SUFFIXES = {
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}


# -- check --------------------------------------------------------------------------------------


def command_check(args: argparse.Namespace) -> int:
    from . import profiles

    chosen_backends = backends(args.backend) if args.backend else None  # None: each layer's own
    chosen_dtypes = dtypes(args.dtype)
    profile = profiles.profile_name(args.profile)
    outputs = _outputs(args)  # checked now: a run never ends unable to write what it found
    run = Run(seed=args.seed, profile=profile, dtypes=chosen_dtypes, targets=list(args.targets))
    options = _options(args, profile)
    with _pool(args) as pool:
        layers = _layers(pool, list(args.targets), args.timeout, chosen_backends)
        run.backends = list(dict.fromkeys(b for chosen in layers.values() for b in chosen))
        jobs = [
            Job(name, backend, dtype, (list(args.targets), name, backend, dtype, options))
            for name, chosen in layers.items()
            for backend in chosen
            for dtype in chosen_dtypes
        ]
        return _check_all(run, jobs, pool, args, ReportWriter(outputs))


def _layers(
    pool: WorkerPool | None, targets: list[str], timeout: float | None, chosen: list[str] | None
) -> dict[str, list[str]]:
    """Each layer's name and the backends it is checked on: those asked for, else its own
    (``torch`` for a ``torch.autograd.Function`` or cases of torch tensors, else ``numpy``)."""
    from ._targets import layer_names

    found = _in_worker(pool, layer_names, targets, timeout)
    natives = found.get("backends") or {}
    return {name: chosen or backends([natives.get(name) or "numpy"]) for name in found["names"]}


def _pool(args: argparse.Namespace) -> contextlib.AbstractContextManager[WorkerPool | None]:
    if not args.isolation:
        return contextlib.nullcontext()
    pool = WorkerPool(getattr(args, "jobs", 1))
    pool.warm()  # the workers import while the first one resolves the targets
    return pool


def _in_worker(
    pool: WorkerPool | None, task: Callable[..., Any], targets: list[str], timeout: float | None
) -> Any:
    """``task(targets)`` in a worker (in this process without one); its error or crash is a
    usage error naming the targets."""
    if pool is None:
        with stdout_to_stderr():
            found = task(targets)
    else:
        outcome = pool.call(task, targets, quiet_limit=quiet_limit(timeout))
        if outcome.failure is not None:
            raise InvalidArgument(
                f"targets {' '.join(targets) or '(entry points)'}: importing them {outcome.failure} the "
                f"worker process ({outcome.detail}) during {outcome.stage!r}"
            )
        found = outcome.value
    if "error" in found:
        raise InvalidArgument(found["error"])
    return found


def _check_all(
    run: Run, jobs: list[Job], pool: WorkerPool | None, args: argparse.Namespace, writer: ReportWriter
) -> int:
    """Check every job, writing the reports as entries finish and once more at the end, whatever
    ends the run: an interrupt (the reports say ``interrupted``) or a failure of the harness
    itself (``incomplete``)."""
    from ._targets import check_entry

    done: dict[int, Entry] = {}
    started = time.perf_counter()
    interrupted: list[int] = []
    try:
        with _progress(len(jobs)) as advance, _interruptible(interrupted):
            for index, entry in check_entries(jobs, check_entry, pool=pool, timeout=args.timeout):
                done[index] = _threshold(entry, args)
                _place(run, jobs, done, started, INCOMPLETE)
                writer.update(run)
                advance(f"{entry.layer} [{entry.backend}, {entry.dtype}]")
    except KeyboardInterrupt:
        interrupted.append(signal.SIGINT)
    finally:
        state = INTERRUPTED if interrupted else COMPLETE if len(done) == len(jobs) else INCOMPLETE
        _place(run, jobs, done, started, state)
        _emit(run, args, writer)
    if interrupted:
        print(f"gradcheck-kit: interrupted; {len(jobs) - len(done)} entries did not run", file=sys.stderr)
        return 128 + interrupted[0]
    return run.exit_code


def _place(run: Run, jobs: list[Job], done: dict[int, Entry], started: float, state: str) -> None:
    """The run so far: finished entries in the order of a serial run, the others not run."""
    run.entries = [done[i] for i in sorted(done)]
    run.not_run = [job.what() for i, job in enumerate(jobs) if i not in done]
    run.state, run.seconds = state, time.perf_counter() - started


@contextlib.contextmanager
def _interruptible(interrupted: list[int]) -> Iterator[None]:
    """SIGTERM ends the run as Ctrl-C does: with reports that say it was interrupted."""

    def terminate(signum: int, frame: Any) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _options(args: argparse.Namespace, profile: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "profile": profile,
        "seed": args.seed,
        "mode": args.mode,
        "timeout": args.timeout,
    }
    options.update(max_examples=args.max_examples, rtol=args.rtol, atol=args.atol)
    options["reference"] = True if args.reference else None
    if args.database is not None:
        options["database"] = False if args.database.strip().lower() in ("", "none", "off") else args.database
    return options


def _threshold(entry: Entry, args: argparse.Namespace) -> Entry:
    limit = args.max_rel_err
    data = entry.to_dict()
    found = data.get("max_rel_err")
    if limit is None or entry.status != PASSED or found is None or found <= limit:
        return entry
    reason = f"max rel err {found:.3g} over all examples exceeds --max-rel-err={limit:g}"
    return Entry.read({**data, "status": FAILED, "reason": reason, "cause": None})


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on stderr when it is a terminal; otherwise nothing."""
    if not sys.stderr.isatty() or total < 2:
        yield lambda description: None
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("checking", total=total)

        def advance(description: str) -> None:
            bar.update(task, advance=1, description=escape(visible(f"done: {description}")))

        yield advance


# -- output -------------------------------------------------------------------------------------


def _formats(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(path, format) for every --output."""
    chosen = []
    for path in args.output:
        name = os.path.basename(path)
        suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
        fmt = SUFFIXES.get(suffix) or args.format
        if fmt is None:
            raise InvalidArgument(
                f"--output={path!r}: cannot tell the format from its suffix; accepted suffixes: "
                f"{', '.join(SUFFIXES)}, or give --format"
            )
        chosen.append((path, "text" if fmt == "table" else fmt))
    return chosen


def _outputs(args: argparse.Namespace) -> list[Output]:
    """Every --output, resolved and checked before anything runs."""
    return [output(path, fmt) for path, fmt in _formats(args)]


def _emit(run: Run, args: argparse.Namespace, writer: ReportWriter) -> None:
    written = writer.finish(run)
    if not any(_is_stdout(out) for out in written):
        terminal = "table" if written or args.format is None else args.format
        if terminal == "table" and sys.stdout.isatty():
            from rich.console import Console

            render_table(run, Console())
        else:
            sys.stdout.write(render(run, terminal))
            sys.stdout.flush()
    for out in written:
        print(f"report written to {visible(out)}", file=sys.stderr)


def _is_stdout(out: Output) -> bool:
    """Whether an output writes to this process's stdout (``--output /dev/stdout``)."""
    if out.fd is None:
        return False
    try:
        return os.path.samestat(os.fstat(out.fd), os.fstat(1))
    except OSError:
        return False


# -- list and show ------------------------------------------------------------------------------


def command_list(args: argparse.Namespace) -> int:
    from ._targets import describe_layers

    with _pool(args) as pool:
        layers = _in_worker(pool, describe_layers, list(args.targets), DEFAULT_TIMEOUT)["layers"]
    if args.format == "json":
        sys.stdout.write(json.dumps({"schema": 1, "layers": layers}, indent=2, allow_nan=False) + "\n")
    elif args.format == "table" and sys.stdout.isatty():
        _list_table(layers)
    else:
        for layer in layers:
            words = " ".join(f"{k}={_words(v)}" if k != "name" else v for k, v in layer.items())
            sys.stdout.write(visible(words) + "\n")
    return 0


def _words(value: Any) -> str:
    if isinstance(value, dict):  # params: a name alone when it has no default
        return ",".join(k if v == "required" else f"{k}:{v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ",".join(value) or "-"
    return str(value) if value not in ("", None) else "-"


def _list_table(layers: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{len(layers)} layers", title_justify="left")
    for column in ("name", "inputs", "params", "cases", "reference", "origin", "description"):
        table.add_column(column, overflow="fold")
    for layer in layers:
        cells = (_words(v) if k != "reference" else ("yes" if v else "no") for k, v in layer.items())
        table.add_row(*(escape(visible(cell)) for cell in cells))
    Console().print(table)


def command_show(args: argparse.Namespace) -> int:
    """Re-render a saved run; the exit code is the saved run's (0 passed, 1 failed, 2 errors or
    a run that did not finish)."""
    writer = ReportWriter(_outputs(args))
    run = load(args.report)
    _emit(run, args, writer)
    return run.exit_code


def command_merge(args: argparse.Namespace) -> int:
    """Merge shard reports into one run and report it; the exit code is the merged run's."""
    writer = ReportWriter(_outputs(args))
    run = merged([load(path) for path in args.reports], list(args.reports))
    _emit(run, args, writer)
    return run.exit_code


def merged(runs: list[Run], paths: list[str]) -> Run:
    """One run of the shards' entries, in the order given: seed and profile must agree; backends,
    dtypes and targets are united, the seconds added; it is complete when every shard is
    (interrupted when one was). Counts, verdict and exit code follow from the entries."""
    for field in ("seed", "profile"):
        values = {path: getattr(run, field) for path, run in zip(paths, runs)}
        if len(set(map(repr, values.values()))) > 1:
            found = ", ".join(f"{visible(path)} {field}={value!r}" for path, value in values.items())
            raise InvalidArgument(
                f"the shards disagree on {field}: {found}; accepted: shards of one run (the same "
                "--seed/--gradcheck-seed and --profile/--gradcheck-profile)"
            )
    states = {run.state for run in runs}
    state = INTERRUPTED if INTERRUPTED in states else INCOMPLETE if INCOMPLETE in states else COMPLETE
    return Run(
        [entry for run in runs for entry in run.entries],
        version=runs[0].version,
        seed=runs[0].seed,
        profile=runs[0].profile,
        backends=_united(run.backends for run in runs),
        dtypes=_united(run.dtypes for run in runs),
        targets=_united(run.targets for run in runs),
        started=min((run.started for run in runs if run.started), default=""),
        seconds=sum(run.seconds or 0.0 for run in runs),
        state=state,
        not_run=[item for run in runs for item in run.not_run],
    )


def _united(lists: Iterable[list[str]]) -> list[str]:
    return list(dict.fromkeys(value for values in lists for value in values))


# -- entry point --------------------------------------------------------------------------------

COMMANDS = {"check": command_check, "list": command_list, "show": command_show, "merge": command_merge}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 passed, 1 failed, 2 usage or import error
    or an unfinished run, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    before = set(threading.enumerate())
    code = _command(args)
    if argv is None:  # the program itself (not a caller's test): threads a layer left cannot hold it
        _leave_despite_threads(before, code)
    return code


def _command(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except (GradcheckError, OSError) as exc:  # OSError: an output that could not be written after all
        print(f"gradcheck-kit {args.command}: error: {visible(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradcheck-kit: interrupted", file=sys.stderr)
        return 130


def _leave_despite_threads(before: set[threading.Thread], code: int) -> None:
    """Exit now when a layer checked in this process (``--no-isolation``) left a non-daemon
    thread running: the interpreter would wait for it forever. (Workers end with os._exit.)"""
    lingering = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    if lingering:
        print(
            f"gradcheck-kit: leaving {len(lingering)} thread(s) a layer started still running",
            file=sys.stderr,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
