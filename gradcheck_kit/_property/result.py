"""Words for property-test results: the minimal configuration in one line (``describe_case``)
and the failure message of a ``PropertyResult`` (configuration, failing elements, replay)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._result import InputReport
from ..registry import Case, LayerSpec

if TYPE_CHECKING:
    from .run import PropertyResult

SHOWN_ELEMENTS = 5  # failing elements listed in the message


def describe_case(spec: LayerSpec, case: Case) -> str:
    """``conv2d: x float64[1,1,3,4], w [1,1,2,2], b [1], stride=2, padding=1``: inputs, then the
    params that differ from forward's defaults, equal tuples written once."""
    params = {k: _collapse(v) for k, v in case.params.items()}
    defaults = _defaults(spec.forward)
    shown = {k: v for k, v in params.items() if not (k in defaults and _equal(defaults[k], v))}
    inputs = Case(case.inputs, {}).describe(spec.input_names)
    words = ", ".join([inputs, *(f"{k}={v!r}" for k, v in shown.items())])
    return f"{spec.name}: {words}"


def _collapse(value: Any) -> Any:
    if isinstance(value, tuple) and value and all(_equal(v, value[0]) for v in value):
        return value[0]
    return value


def _defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: _collapse(p.default) for p in parameters if p.default is not p.empty}


def _equal(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # arrays and other values without a plain truth value
        return False


def drawn(case: Case) -> dict[str, Any]:
    """The drawn keywords worth printing: names, numbers, tuples (geometries show in shapes)."""
    plain = (str, int, float, bool, tuple, type(None))
    return {k: v for k, v in case.meta.items() if isinstance(v, plain)}


def render(r: PropertyResult) -> str:
    head = f"property_check {r.layer} [{r.backend}]"
    counts = f"{r.examples} examples in {r.seconds:.2f} s (profile {r.profile}, seed {r.seed})"
    if r.case is None or r.check is None:
        kinks = f", {r.kinks} kinks" if r.kinks else ""
        lines = [f"{head} PASSED: {counts}; max rel err {r.max_rel_err:.3g}{kinks}"]
        return "\n".join(lines + [f"  note: {n}" for n in r.notes])
    keywords = ", ".join(f"{k}={v!r}" for k, v in drawn(r.case).items())
    lines = [
        f"{head} FAILED after {counts}; {r.failing_examples} failing while shrinking",
        f"  minimal configuration: {r.description}",
        *([f"  drawn: {keywords}"] if keywords else []),
        f"  cause: {r.cause}",
        *(line for report in r.check.inputs for line in _elements(report)),
        *(f"  note: {n}" for n in r.notes),
        "  check of the minimal case:",
        *("    " + t for t in str(r.check).splitlines()),
    ]
    return "\n".join(lines + _replay_lines(r))


def _elements(report: InputReport) -> list[str]:
    if report.passed:
        return []
    total = int(np.prod(report.shape)) if report.shape else 1
    lines = [
        f"  failing input {report.name} {report.dtype}[{','.join(map(str, report.shape))}]: "
        f"{report.failing} of {total} elements fail ({report.mode})"
    ]
    for index in _worst_elements(report):
        analytic, numeric = report.analytic_map[index], report.numeric_map[index]  # type: ignore[index]
        lines.append(f"    {report.name}{list(index)}: analytic {analytic:.7g} vs numeric {numeric:.7g}")
    if len(lines) == 1 and report.worst_index is not None:
        lines.append(
            f"    worst {report.name}{list(report.worst_index)}: analytic {report.analytic:.7g} vs "
            f"numeric {report.numeric:.7g}"
        )
    return lines


def _worst_elements(report: InputReport) -> list[tuple[int, ...]]:
    maps = (report.failing_map, report.error_map, report.analytic_map, report.numeric_map)
    if any(m is None for m in maps):
        return []
    failing = np.argwhere(np.asarray(report.failing_map, dtype=bool))
    errors = np.nan_to_num(np.asarray(report.error_map, dtype=float), nan=-np.inf)
    order = sorted((tuple(int(i) for i in idx) for idx in failing), key=lambda i: -errors[i])
    return order[:SHOWN_ELEMENTS]


def _replay_lines(r: PropertyResult) -> list[str]:
    lines = ["  replay:", f"    {r.replay}"]
    if r.reproduce:
        lines.append(f"    or add {r.reproduce} to a @gk.given_layer test")
    seed = r.case.meta.get("seed") if r.case is not None else None
    if seed is not None:
        lines.append(f"    values: numpy.random.default_rng({seed}) in the layer's cases builder")
    if r.database:
        lines.append(f"    database {r.database} (key {r.database_key!r}) replays it first on the next run")
    return lines
