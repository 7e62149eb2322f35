"""Words for property-test results: the minimal configuration in one line (``describe_case``)
and the failure message of a ``PropertyResult`` (configuration, failing elements, replay)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._ground.formatting import finite_or_none, num, visible
from .._result import CheckResult, InputReport, html_of
from ..errors import GradientMismatch
from ..registry import Case, LayerSpec

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


@dataclass
class PropertyResult:
    """What a property test of one layer found; ``gk.property_check`` returns it.

    ``case`` and ``check`` are set on failure: the minimal failing case and its element-wise
    check. ``print(result)`` shows the report; ``bool(result)`` is ``result.passed``.

    Attributes
    ----------
    layer, backend, profile : str
        The layer's name, the backend and the hypothesis profile it ran under.
    seed : int
        The run's seed.
    examples, failing_examples : int
        Cases checked, and how many of them failed (while shrinking).
    seconds, check_seconds : float
        The whole run, and the part spent in the checks.
    max_rel_err, max_abs_err : float
        The largest errors over every example.
    kinks : int
        Probed elements at non-differentiable points, over every example.
    case : Case, optional
        The minimal failing case.
    description : str, optional
        That case in one line.
    check : CheckResult, optional
        Its element-wise check (the search's check, where that one passes).
    search_check : CheckResult, optional
        The check that failed on it during the search.
    larger_check : CheckResult, optional
        A larger failing case's check, when only that one names the cause.
    reference : bool
        Whether a torch reference checked the forward too.
    reproduce, blob : str, optional
        Hypothesis' ``@reproduce_failure(...)`` decorator and its blob.
    database, database_key : str, optional
        The example database that keeps the failure, and its key there.
    replay : str, optional
        The ``gk.property_check(...)`` call that replays the failure.
    notes : list of str
        What else is worth knowing (a flaky failure, a re-check that passed, ...).

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> spec = gk.register("tanh", forward=np.tanh, backward=lambda dy, x: (dy * (1 - np.tanh(x) ** 2),),
    ...                    cases=[gk.Case((np.linspace(-1.0, 1.0, 4),))], into=gk.Registry())
    >>> result = gk.property_check(spec, max_examples=3, database=False)
    >>> result.passed, result.case, result.to_dict()["layer"]
    (True, None, 'tanh')
    """

    layer: str
    backend: str
    profile: str
    seed: int
    examples: int = 0
    failing_examples: int = 0
    seconds: float = 0.0
    check_seconds: float = 0.0
    max_rel_err: float | None = None  # None: no example measured a gradient
    max_abs_err: float | None = None
    kinks: int = 0
    case: Case | None = None
    description: str | None = None
    check: CheckResult | None = None
    search_check: CheckResult | None = None
    larger_check: CheckResult | None = None  # a larger failing case, when it names the cause
    reference: bool = False  # whether a torch reference checked the forward too
    reproduce: str | None = None
    blob: str | None = None
    database: str | None = None
    database_key: str | None = None
    replay: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every example passed (no minimal failing case).

        Returns
        -------
        bool
        """
        return self.case is None

    @property
    def cause(self) -> str | None:
        """The minimal case's cause, and a larger failing case's where only that one names it.

        Returns
        -------
        str or None
            None when every example passed.
        """
        if self.check is None:
            return None
        if self.larger_check is not None:
            return f"{self.check.cause}; on a larger failing case: {self.larger_check.cause}"
        return self.check.cause

    @property
    def examples_per_second(self) -> float:
        """Examples checked per second of the run (inf for a run that took no time).

        Returns
        -------
        float
        """
        return self.examples / self.seconds if self.seconds > 0 else float("inf")

    @property
    def message(self) -> str:
        """The report: a verdict line; on failure the minimal case, its check and how to replay it.

        Returns
        -------
        str
        """
        return render(self)

    def raise_for_failure(self) -> PropertyResult:
        """Raise ``gk.GradientMismatch`` (an AssertionError) with ``message`` if it failed.

        Returns
        -------
        PropertyResult
            ``self``, when every example passed.

        Raises
        ------
        GradientMismatch
            When one failed; its ``result`` is this result.
        """
        __tracebackhide__ = True  # pytest shows the caller's line, not this one
        if not self.passed:
            raise GradientMismatch(self.message, self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: counts, errors, the minimal case, its checks and how to replay it.

        ``drawn`` holds the minimal case's drawn keywords; ``replay`` the decorator, the blob,
        the database and key, and the call.

        Returns
        -------
        dict
            JSON-able: non-finite errors become None.
        """
        return {
            "layer": self.layer,
            "backend": self.backend,
            "profile": self.profile,
            "seed": self.seed,
            "passed": self.passed,
            "examples": self.examples,
            "failing_examples": self.failing_examples,
            "seconds": round(self.seconds, 6),
            "max_rel_err": finite_or_none(self.max_rel_err),
            "max_abs_err": finite_or_none(self.max_abs_err),
            "kinks": self.kinks,
            "case": self.description,
            "cause": self.cause,
            "reference": self.reference,
            "drawn": drawn(self.case) if self.case is not None else None,
            "check": self.check.to_dict() if self.check is not None else None,
            "search_check": self.search_check.to_dict() if self.search_check is not None else None,
            "larger_check": self.larger_check.to_dict() if self.larger_check is not None else None,
            "replay": {
                "reproduce_failure": self.reproduce,
                "blob": self.blob,
                "database": self.database,
                "database_key": self.database_key,
                "call": self.replay,
            },
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        """``<PropertyResult conv2d [numpy] FAILED after 23 examples ...>``: verdict, the largest
        error and, on failure, the minimal case and its cause, in a few lines."""
        verdict = "passed" if self.passed else "FAILED"
        head = f"<PropertyResult {self.layer} [{self.backend}] {verdict} after {self.examples} examples"
        lines = [f"{head} (profile {self.profile}, seed {self.seed}); max rel err {num(self.max_rel_err)}"]
        if not self.passed:
            lines += [f"  minimal case: {self.description}", f"  cause: {self.cause}"]
        return visible("\n".join(lines) + ">")

    def _repr_html_(self) -> str:
        """The HTML report's section for this result (Jupyter shows it), user text escaped."""
        return html_of(self)

    def __bool__(self) -> bool:
        return self.passed


def render(r: PropertyResult) -> str:
    head = f"property_check {r.layer} [{r.backend}]"
    counts = f"{r.examples} examples in {r.seconds:.2f} s (profile {r.profile}, seed {r.seed})"
    if r.case is None or r.check is None:
        kinks = f", {r.kinks} kinks" if r.kinks else ""
        lines = [f"{head} PASSED: {counts}; max rel err {num(r.max_rel_err)}{kinks}"]
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
