"""``gradcheck-kit``: check registered layers from the command line and report the results.

    gradcheck-kit check reference_layers --backend numpy
    gradcheck-kit check my_layers.py:conv2d --dtype float32 --output report.html --output report.json
    gradcheck-kit list reference_layers
    gradcheck-kit show report.json --format markdown

Exit codes: 0 every check passed, 1 a gradient or contract failure, 2 a usage, import or
configuration error (the message names the offending value and what is accepted).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ._ground.vocabulary import DEFAULT_DTYPES, MODES, NUMPY_FLOATS
from ._version import __version__
from .errors import GradcheckError, InvalidArgument
from .registry import LayerSpec
from .report import Entry, Run, load, render_markdown, render_table, render_text, write_atomic

FORMATS = ("table", "text", "json", "markdown", "html")
SUFFIXES = {
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}
DEFAULT_TIMEOUT = 60.0


# -- arguments ----------------------------------------------------------------------------------


def _positive(kind: type, label: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or (kind is float and not math.isfinite(value)):
            accepted = "a positive integer" if kind is int else "a finite number > 0"
            raise argparse.ArgumentTypeError(f"{label}={text!r} is invalid; accepted: {accepted}")
        return value

    return parse


def _tolerance(label: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not (value >= 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{label}={text!r} is invalid; accepted: a finite number >= 0")
        return value

    return parse


def _seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--seed={text!r} is invalid; accepted: an integer >= 0")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcheck-kit",
        description="Check hand-written backward passes of registered layers against finite differences.",
        epilog="Exit codes: 0 all passed, 1 a gradient or contract failure, 2 a usage or import error.",
    )
    parser.add_argument("--version", action="version", version=f"gradcheck-kit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{check,list,show}")
    _check_parser(commands.add_parser("check", help="property-test layers and report"))
    listing = commands.add_parser("list", help="show registered layers with their inputs and params")
    listing.add_argument("targets", nargs="*", metavar="TARGET", help="as for check")
    listing.add_argument("--format", choices=("table", "text", "json"), default="table")
    show = commands.add_parser("show", help="re-render a saved JSON report")
    show.add_argument("report", metavar="RESULT.json")
    _output_arguments(show)
    return parser


def _check_parser(check: argparse.ArgumentParser) -> None:
    check.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="package.module, package.module:layer, file.py or file.py:layer "
        "(none: the gradcheck_kit.layers entry points)",
    )
    check.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        help="numpy (default), torch, torch:cuda, cupy; repeat or comma-separate for several",
    )
    check.add_argument(
        "--dtype",
        action="append",
        metavar="DTYPE",
        help=f"one of {', '.join(NUMPY_FLOATS)}; repeat or comma-separate (default float64,float32)",
    )
    check.add_argument(
        "--profile",
        choices=("dev", "ci", "thorough"),
        default=None,
        help="hypothesis profile: 20/50/500 examples (default $HYPOTHESIS_PROFILE or ci)",
    )
    check.add_argument(
        "--max-examples",
        type=_positive(int, "--max-examples"),
        metavar="N",
        help="examples per layer, backend and dtype (default: the profile's)",
    )
    check.add_argument("--seed", type=_seed, default=0, help="hypothesis seed (default 0: reproducible)")
    check.add_argument("--mode", choices=MODES, default="projection", help="how each example is checked")
    check.add_argument(
        "--timeout",
        type=_positive(float, "--timeout"),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit of one check, stops hanging layers (default {DEFAULT_TIMEOUT:g})",
    )
    check.add_argument(
        "--rtol", type=_tolerance("--rtol"), help="error allowed in the analytic gradient, relative"
    )
    check.add_argument(
        "--atol", type=_tolerance("--atol"), help="error allowed in the analytic gradient, absolute"
    )
    check.add_argument(
        "--max-rel-err",
        type=_positive(float, "--max-rel-err"),
        metavar="X",
        help="also fail a layer whose largest relative error over all examples exceeds X",
    )
    check.add_argument(
        "--reference", action="store_true", help="compare with the layer's torch reference too"
    )
    check.add_argument(
        "--database",
        metavar="PATH",
        help="example database (default $GRADCHECK_DATABASE or .hypothesis/gradcheck; none: off)",
    )
    _output_arguments(check)


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="table (text when not a terminal), text, json, markdown or html",
    )
    parser.add_argument(
        "--output",
        action="append",
        metavar="PATH",
        default=[],
        help="write the report here (atomically; format from the suffix, else --format); repeat for several",
    )


def _listed(values: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    names = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    return list(dict.fromkeys(names or default))


def _backends(values: Sequence[str] | None) -> list[str]:
    from ._ground.backends import backend_for

    names = _listed(values, ["numpy"])
    for name in names:
        backend_for(name)  # raises InvalidArgument naming the backend and what is accepted
    return names


def _dtypes(values: Sequence[str] | None) -> list[str]:
    names = _listed(values, DEFAULT_DTYPES)
    unknown = [n for n in names if n not in NUMPY_FLOATS]
    if unknown:
        raise InvalidArgument(f"--dtype={unknown[0]!r} is unknown; accepted: {', '.join(NUMPY_FLOATS)}")
    return names


# -- check --------------------------------------------------------------------------------------


def command_check(args: argparse.Namespace) -> int:
    from . import _targets as targets
    from . import profiles

    backends, dtypes = _backends(args.backend), _dtypes(args.dtype)
    profile = profiles.profile_name(args.profile)
    formats = _formats(args)
    specs = targets.resolve(args.targets)
    run = Run(seed=args.seed, profile=profile, backends=backends, dtypes=dtypes, targets=list(args.targets))
    jobs = [(spec, backend, dtype) for spec in specs for backend in backends for dtype in dtypes]
    started = time.perf_counter()
    with _progress(len(jobs)) as advance, contextlib.redirect_stdout(sys.stderr):
        for spec, backend, dtype in jobs:
            advance(f"{spec.name} [{backend}, {dtype}]")
            run.entries.append(_threshold(check_one(spec, backend, dtype, _options(args, profile)), args))
    run.seconds = time.perf_counter() - started
    _emit(run, args, formats)
    return run.exit_code


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


def check_one(spec: LayerSpec, backend: str, dtype: str, options: dict[str, Any]) -> Entry:
    """Property-test one layer on one backend and dtype; a harness-level problem (no cases, a
    strategy that cannot draw a case, an invalid setting) becomes an ``error`` entry."""
    from ._property.run import property_check

    started = time.perf_counter()
    try:
        result = property_check(spec, backend=backend, dtypes=[dtype], **options)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the layer's strategy may raise anything, SystemExit included
        return Entry.errored(
            spec.name, backend, dtype, _harness_error(spec, exc), time.perf_counter() - started
        )
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


def _threshold(entry: Entry, args: argparse.Namespace) -> Entry:
    limit = args.max_rel_err
    found = (entry.data or {}).get("max_rel_err")
    if limit is None or entry.status != "passed" or found is None or found <= limit:
        return entry
    entry.status = "failed"
    entry.reason = f"max rel err {found:.3g} over all examples exceeds --max-rel-err={limit:g}"
    return entry


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
        started = [False]

        def advance(description: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=escape(description))

        yield advance


# -- output -------------------------------------------------------------------------------------


def _formats(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(path, format) for every --output, checked before anything runs."""
    chosen = []
    for path in args.output:
        suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
        fmt = SUFFIXES.get(suffix) or args.format
        if fmt is None:
            raise InvalidArgument(
                f"--output={path!r}: cannot tell the format from its suffix; accepted suffixes: "
                f"{', '.join(SUFFIXES)}, or give --format"
            )
        chosen.append((path, "text" if fmt == "table" else fmt))
    return chosen


def render(run: Run, fmt: str) -> str:
    """The run as ``text``, ``json``, ``markdown`` or ``html``."""
    if fmt == "json":
        return run.to_json()
    if fmt == "markdown":
        return render_markdown(run)
    if fmt == "html":
        from .report import render_html

        return render_html(run)
    return render_text(run)


def _emit(run: Run, args: argparse.Namespace, formats: list[tuple[str, str]]) -> None:
    for path, fmt in formats:
        write_atomic(path, render(run, fmt))
    terminal = "table" if formats or args.format is None else args.format
    if terminal == "table" and sys.stdout.isatty():
        from rich.console import Console

        render_table(run, Console())
    else:
        sys.stdout.write(render(run, terminal))
    for path, _ in formats:
        print(f"report written to {path}", file=sys.stderr)


# -- list and show ------------------------------------------------------------------------------


def command_list(args: argparse.Namespace) -> int:
    from . import _targets as targets

    layers = [describe_layer(spec) for spec in targets.resolve(args.targets)]
    if args.format == "json":
        sys.stdout.write(json.dumps({"schema": 1, "layers": layers}, indent=2) + "\n")
    elif args.format == "table" and sys.stdout.isatty():
        _list_table(layers)
    else:
        for layer in layers:
            sys.stdout.write(
                " ".join(f"{k}={_words(v)}" if k != "name" else v for k, v in layer.items()) + "\n"
            )
    return 0


def describe_layer(spec: LayerSpec) -> dict[str, Any]:
    """Name, inputs, params with their defaults, cases, reference and origin of a layer."""
    return {
        "name": spec.name,
        "inputs": list(spec.input_names),
        "params": _params(spec),
        "cases": _cases_kind(spec.cases),
        "reference": spec.reference is not None,
        "origin": spec.origin,
        "description": spec.description,
    }


def _params(spec: LayerSpec) -> dict[str, str]:
    """Forward's keyword parameters (not inputs) with their defaults' repr, ``required`` if none."""
    try:
        parameters = list(inspect.signature(spec.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    keyword = [p for p in parameters if p.kind is p.KEYWORD_ONLY or p.name not in spec.input_names]
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        p.name: "required" if p.default is p.empty else repr(p.default)
        for p in keyword
        if p.kind not in kinds
    }


def _cases_kind(cases: Any) -> str:
    if cases is None:
        return "none"
    return "strategy" if hasattr(cases, "example") else f"{len(cases)} fixed"


def _words(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items()) or "-"
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
        table.add_row(
            *(escape(_words(v) if k != "reference" else ("yes" if v else "no")) for k, v in layer.items())
        )
    Console().print(table)


def command_show(args: argparse.Namespace) -> int:
    """Re-render a saved run; the exit code is the saved run's (0 passed, 1 failed, 2 errors)."""
    formats = _formats(args)
    run = load(args.report)
    _emit(run, args, formats)
    return run.exit_code


# -- entry point --------------------------------------------------------------------------------

COMMANDS = {"check": command_check, "list": command_list, "show": command_show}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 passed, 1 failed, 2 usage or import error)."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GradcheckError as exc:
        print(f"gradcheck-kit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an --output that cannot be written, a report that cannot be read
        print(f"gradcheck-kit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradcheck-kit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
