"""The command line's arguments: the parser of ``gradcheck-kit`` and the readers of its values.

Every number is read strictly (ASCII digits only, ``_ground.parsing``) and every value that
cannot be used is refused with a usage error (exit 2) naming it and what is accepted, before
anything is imported or run.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from ._ground import timeouts
from ._ground.parsing import ascii_float, ascii_int
from ._ground.vocabulary import (
    BACKEND_PATTERN,
    BACKENDS_ACCEPTED,
    CASE_DTYPES,
    DEFAULT_DTYPES,
    DEFAULT_TIMEOUT,
    MODES,
)
from ._version import __version__
from .errors import InvalidArgument

FORMATS = ("table", "text", "json", "markdown", "html")


def _positive(kind: type, label: str, *, infinite: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = ascii_int(text) if kind is int else ascii_float(text, infinite=infinite)
        if value is None or not value > 0:
            accepted = "a positive integer" if kind is int else "a finite number > 0"
            accepted += " (or inf: no limit)" if infinite else ""
            raise argparse.ArgumentTypeError(f"{label}={text!r} is invalid; accepted: {accepted}")
        return timeouts.validate(value) if infinite else value  # inf or huge: None, no limit

    return parse


def _tolerance(label: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = ascii_float(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"{label}={text!r} is invalid; accepted: a finite number >= 0")
        return value

    return parse


def _seed(text: str) -> int:
    value = ascii_int(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"--seed={text!r} is invalid; accepted: an integer >= 0")
    return value


def _jobs(text: str) -> int:
    if text == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    value = ascii_int(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"--jobs={text!r} is invalid; accepted: a positive integer or auto")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcheck-kit",
        description="Check hand-written backward passes of registered layers against finite differences.",
        epilog="Exit codes: 0 all passed, 1 a gradient or contract failure (or a layer that crashed or "
        "hung), 2 a usage or import error or an unfinished run, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"gradcheck-kit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{check,list,show,merge}")
    _check_parser(commands.add_parser("check", help="property-test layers and report"))
    listing = commands.add_parser("list", help="show registered layers with their inputs and params")
    listing.add_argument("targets", nargs="*", metavar="TARGET", help="as for check")
    listing.add_argument("--format", choices=("table", "text", "json"), default="table")
    _isolation_argument(listing)
    show = commands.add_parser("show", help="re-render a saved JSON report")
    show.add_argument("report", metavar="RESULT.json")
    _output_arguments(show)
    merge = commands.add_parser(
        "merge",
        help="merge the JSON reports of shards (check --format json, the plugin's --gradcheck-report) "
        "into one run",
    )
    merge.add_argument("reports", nargs="+", metavar="SHARD.json")
    _output_arguments(merge)
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
        help="numpy, torch, torch:cuda, cupy, jax; repeat or comma-separate for several (default: each "
        "layer's own: torch for a torch.autograd.Function or cases of torch tensors, else numpy; a layer "
        "that cannot run on a backend asked for is skipped there, saying why)",
    )
    check.add_argument(
        "--dtype",
        action="append",
        metavar="DTYPE",
        help=f"one of {', '.join(CASE_DTYPES)} (bfloat16 on torch); repeat or comma-separate "
        "(default float64,float32)",
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
        type=_positive(float, "--timeout", infinite=True),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit of one check, stops hanging layers (default {DEFAULT_TIMEOUT:g}; inf: none); a "
        "worker that stays quiet longer, plus a grace period, is killed",
    )
    check.add_argument(
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="entries checked at once, each in its own worker process (default 1; auto: one per core); "
        "the results are those of a serial run",
    )
    _isolation_argument(check)
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


def _isolation_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-isolation",
        dest="isolation",
        action="store_false",
        help="import and check the layers in this process (to debug them; a crash then ends the run)",
    )


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
        help="write the report here as entries finish (atomically; FIFOs, devices and /dev/stdout are "
        "written through, at the end; format from the suffix, else --format); repeat for several",
    )


def listed(values: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    names = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    return list(dict.fromkeys(names or default))


def backends(values: Sequence[str] | None) -> list[str]:
    """The backends asked for, refused here when unknown (``torch:meta``) or unavailable."""
    from ._ground.backends import backend_for

    names = listed(values, ["numpy"])
    for name in names:
        if not re.fullmatch(BACKEND_PATTERN, name):
            raise InvalidArgument(f"--backend={name!r} is unknown; accepted: {BACKENDS_ACCEPTED}")
        backend_for(name)  # raises InvalidArgument naming the backend and why it cannot run here
    return names


def dtypes(values: Sequence[str] | None) -> list[str]:
    names = listed(values, DEFAULT_DTYPES)
    unknown = [n for n in names if n not in CASE_DTYPES]
    if unknown:
        raise InvalidArgument(f"--dtype={unknown[0]!r} is unknown; accepted: {', '.join(CASE_DTYPES)}")
    return names
