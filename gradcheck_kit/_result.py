"""What a check found: findings, per-input gradient reports, the overall result, and its plain
text (``print(result)``: a verdict line, one line per input, the findings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._ground.formatting import finite_or_none, jsonable, num
from .errors import GradientMismatch

SCHEMA_VERSION = 1

ERROR, WARNING = "error", "warning"
CRASHES = ("exception", "structure", "timeout", "memory", "internal")  # finding kinds that end a check
# finding kinds that make the gradient verdict moot (or explain it better than any map can)
INVALIDATING = ("mutation", "determinism", "linearity")


@dataclass
class Finding:
    """One named observation of a check: a broken contract, a warning, a crash.

    Attributes
    ----------
    kind : str
        Stable across releases (JSON, diagnosis): ``exception``, ``structure``, ``count``,
        ``type``, ``shape``, ``dtype``, ``nonfinite``, ``mutation``, ``aliasing``,
        ``determinism``, ``linearity``, ``nothing_differentiated``, ``precision``, ``reference``,
        ``timeout``, ``budget`` or ``internal``.
    message : str
        One line for people.
    severity : {"error", "warning"}, default "error"
        An error fails the check; a warning does not.
    input : str, optional
        The input (or ``grad_output``) it concerns.
    where : tuple of int, optional
        The element it concerns.
    details : dict
        Extra values behind the message (JSON-able after ``to_dict``).
    traceback : str, optional
        The layer's traceback, for an exception.

    Examples
    --------
    >>> import gradcheck_kit as gk
    >>> finding = gk.Finding("aliasing", "output is a view of x", severity="warning", input="x")
    >>> finding.is_error, finding.to_dict()["kind"]
    (False, 'aliasing')
    """

    kind: str
    message: str
    severity: str = ERROR
    input: str | None = None
    where: tuple[int, ...] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    traceback: str | None = None

    @property
    def is_error(self) -> bool:
        """Whether it fails the check (severity ``error``).

        Returns
        -------
        bool
        """
        return self.severity == ERROR

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every attribute, ``where`` as a list and ``details`` made JSON-able.

        Returns
        -------
        dict
        """
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "input": self.input,
            "where": list(self.where) if self.where is not None else None,
            "details": jsonable(self.details),
            "traceback": self.traceback,
        }


@dataclass
class InputReport:
    """The gradient verdict for one input, with the evidence behind it.

    The element maps have the input's shape and are NaN (False) where no element was probed.

    Attributes
    ----------
    name : str
        The input's name (forward's parameter name).
    index : int
        Its position among forward's inputs.
    shape : tuple of int
        Its shape.
    dtype : str
        The input's dtype.
    mode : {"elementwise", "projection"}
        How it was probed.
    passed : bool
        Whether the analytic gradient matched the numeric one within tolerance.
    checked : int
        The number of probes (elements, or directions).
    max_abs_err, max_rel_err : float
        The largest error, absolute and relative to the numeric gradient (``inf`` when the
        numeric gradient is 0 everywhere and the error is not).
    worst_index : tuple of int, optional
        The element with the largest error (None for a projection that was not localized).
    analytic, numeric, tolerance : float, optional
        Backward's value, the finite-difference one and the error allowed there.
    kinks : int
        Probed elements at a non-differentiable point (any value between the slopes passes).
    failing : int
        Failing probes.
    cause : str, optional
        The likely cause of a failure, in one line.
    note : str, optional
        What else is worth knowing (where the error sits, what was checked how).
    taylor_orders : list of float, optional
        The Taylor test's observed orders: ~2 for a right gradient, ~1 for a wrong one.
    error_map, numeric_map, analytic_map, tolerance_map : numpy.ndarray, optional
        Per element: the error, the numeric and analytic gradients, the tolerance.
    failing_map, kink_map : numpy.ndarray of bool, optional
        Per element: whether it failed, whether it sits at a kink.
    moved_map : numpy.ndarray, optional
        Per element: how many outputs its probe moved.
    block : tuple, optional
        The slices of the block a failed projection was localized on.
    evidence : dict
        What the diagnosis found: ``patterns``, ``where``, ``taylor`` and more.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> report = gk.check(np.tanh, lambda dy, x: (dy,), (np.linspace(-1.0, 1.0, 3),)).input("x")
    >>> report.passed, report.mode, report.failing, report.worst_index
    (False, 'elementwise', 2, (2,))
    """

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: str
    mode: str
    passed: bool
    checked: int = 0
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    worst_index: tuple[int, ...] | None = None
    analytic: float | None = None
    numeric: float | None = None
    tolerance: float | None = None
    kinks: int = 0
    failing: int = 0
    cause: str | None = None
    note: str | None = None
    taylor_orders: list[float] | None = None
    # element maps over the input's shape, NaN (False) where an element was not probed
    error_map: np.ndarray | None = field(default=None, repr=False)
    numeric_map: np.ndarray | None = field(default=None, repr=False)
    analytic_map: np.ndarray | None = field(default=None, repr=False)
    tolerance_map: np.ndarray | None = field(default=None, repr=False)
    failing_map: np.ndarray | None = field(default=None, repr=False)
    kink_map: np.ndarray | None = field(default=None, repr=False)
    moved_map: np.ndarray | None = field(default=None, repr=False)
    block: tuple[Any, ...] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, maps: bool = False) -> dict[str, Any]:
        """The JSON form: every scalar attribute (non-finite numbers as None) and ``evidence``.

        Parameters
        ----------
        maps : bool, default False
            Add ``error_map`` (as nested lists).

        Returns
        -------
        dict
        """
        data = {
            "name": self.name,
            "index": self.index,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "mode": self.mode,
            "passed": self.passed,
            "checked": self.checked,
            "max_abs_err": finite_or_none(self.max_abs_err),
            "max_rel_err": finite_or_none(self.max_rel_err),
            "worst_index": list(self.worst_index) if self.worst_index is not None else None,
            "analytic": finite_or_none(self.analytic),
            "numeric": finite_or_none(self.numeric),
            "tolerance": finite_or_none(self.tolerance),
            "kinks": self.kinks,
            "failing": self.failing,
            "cause": self.cause,
            "note": self.note,
            "taylor_orders": jsonable(self.taylor_orders),  # NaN near a singularity: null
            "evidence": jsonable(self.evidence),
        }
        if maps and self.error_map is not None:
            data["error_map"] = jsonable(self.error_map)
        return data


PARTS = ("second_order", "forward_mode", "batched", "undefined_grad")  # result.checks, in order
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class CheckPart:
    """One named part of a check beyond the first-order gradient, with its verdict and cost.

    Attributes
    ----------
    name : str
        ``second_order``, ``forward_mode``, ``batched`` or ``undefined_grad``.
    status : {"passed", "failed", "skipped"}
        A skipped part was not checked (``message`` says why) and fails nothing.
    message : str
        What was checked and how, or why it was skipped, in one line.
    cause : str, optional
        Why it failed, in one line.
    calls : dict of str to int
        The calls it made, per kind (``forward``, ``backward``, ``jvp``, ``double_backward``).
    seconds : float
        How long it took.
    result : CheckResult, optional
        The check it ran as a layer of its own (the second order: backward checked by
        ``gk.check``), with its inputs, findings and diagnosis.
    details : dict
        Numbers behind the verdict (JSON-able after ``to_dict``).

    Examples
    --------
    >>> import gradcheck_kit as gk
    >>> part = gk.CheckPart("batched", "failed", "backward under torch.func.vmap", cause="raised")
    >>> part.passed, part.to_dict()["status"]
    (False, 'failed')
    """

    name: str
    status: str
    message: str
    cause: str | None = None
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    result: CheckResult | None = field(default=None, repr=False)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether it did not fail (a skipped part fails nothing).

        Returns
        -------
        bool
        """
        return self.status != FAILED

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every attribute, the nested result as its own ``to_dict``.

        Returns
        -------
        dict
        """
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "cause": self.cause,
            "calls": dict(self.calls),
            "seconds": round(self.seconds, 6),
            "result": self.result.to_dict() if self.result is not None else None,
            "details": jsonable(self.details),
        }


@dataclass
class CheckResult:
    """Everything ``gk.check`` learned about one layer on one case.

    ``print(result)`` shows the report; ``bool(result)`` is ``result.passed``.

    Attributes
    ----------
    name : str
        The layer's name.
    backend : str
        The inputs' library, such as ``numpy`` or ``torch``; a GPU device follows a colon.
    case : str
        The case in one line (inputs' dtypes and shapes, params).
    seed : int
        The seed of grad_output and the random directions.
    inputs : list of InputReport
        One per differentiated input.
    findings : list of Finding
        Named contract findings, errors and warnings.
    calls : dict of str to int
        How many times forward and backward were called.
    seconds : float
        How long the check took.
    settings : dict
        The mode, tolerances and whether a reference was given, and what the check chose
        (``mode_used``, the grid each input was differenced on, the dtype computed in).
    checks : dict of str to CheckPart
        The parts beyond the first-order gradient, by name (``second_order``,
        ``forward_mode``, ``batched``, ``undefined_grad``), each with its verdict and cost;
        empty for a layer that offers none.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> result = gk.check(np.tanh, lambda dy, x: (dy,), (np.linspace(-1.0, 1.0, 3),))
    >>> result.passed, result.patterns, sorted(result.calls)
    (False, ['missing_chain_factor'], ['backward', 'forward'])
    """

    name: str
    backend: str
    case: str
    seed: int
    inputs: list[InputReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, CheckPart] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every input passed, no finding is an error and no part of ``checks`` failed.

        Returns
        -------
        bool
        """
        first = all(r.passed for r in self.inputs) and not any(f.is_error for f in self.errors)
        return first and all(part.passed for part in self.checks.values())

    @property
    def errors(self) -> list[Finding]:
        """The findings that fail the check.

        Returns
        -------
        list of Finding
        """
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        """The findings that do not fail the check.

        Returns
        -------
        list of Finding
        """
        return [f for f in self.findings if not f.is_error]

    @property
    def kinks(self) -> int:
        """The probed elements at a non-differentiable point, over all inputs.

        Returns
        -------
        int
        """
        return sum(r.kinks for r in self.inputs)

    @property
    def max_rel_err(self) -> float | None:
        """The largest relative error over the inputs checked.

        Returns
        -------
        float or None
            The largest ``max_rel_err`` of ``inputs`` (``inf`` when an input's numeric gradient
            is 0 everywhere and its error is not; null in ``to_dict``); None when no gradient
            was measured (no input was checked, e.g. because forward raised).
        """
        return max((r.max_rel_err for r in self.inputs), default=None)

    @property
    def max_abs_err(self) -> float | None:
        """The largest absolute error over the inputs checked.

        Returns
        -------
        float or None
            The largest ``max_abs_err`` of ``inputs``; None when no gradient was measured (no
            input was checked, e.g. because forward raised).
        """
        return max((r.max_abs_err for r in self.inputs), default=None)

    @property
    def cause(self) -> str | None:
        """The one-line reason the check failed, or None when it passed.

        A crash comes first, then a write into the inputs or grad_output, a nondeterministic
        call or a backward not linear in grad_output (any of them makes the gradient comparison
        moot), then the first failing input, then any other error finding, then the first
        failed part of ``checks`` (``second_order: ...``).

        Returns
        -------
        str or None
        """
        errors = self.errors
        for kinds in (CRASHES, INVALIDATING):
            first = next((f for f in errors if f.kind in kinds), None)
            if first is not None:
                return first.message
        for report in self.inputs:
            if not report.passed:
                return f"{report.name}: {report.cause or 'gradient mismatch'}"
        if errors:
            return errors[0].message
        failed = next((p for p in self.checks.values() if not p.passed), None)
        return f"{failed.name}: {failed.cause or failed.message}" if failed is not None else None

    @property
    def patterns(self) -> list[str]:
        """Names of the diagnosed bug patterns, inputs first, then contract ones.

        Returns
        -------
        list of str
            Such as ``constant_factor``, ``kernel_not_rotated`` or ``grad_output_mutated``,
            each once.
        """
        names = [p["name"] for r in self.inputs for p in r.evidence.get("patterns", [])]
        for finding in self.errors:
            if finding.kind == "mutation" and finding.input and finding.input.startswith("grad_output"):
                names.append("grad_output_mutated")
            elif finding.kind == "mutation":
                names.append("input_mutated")
            elif finding.kind == "determinism":
                names.append("nondeterministic")
            elif finding.kind == "linearity":
                names.append(finding.details.get("pattern", "not_linear_in_grad_output"))
        return list(dict.fromkeys(names))

    def input(self, name: str) -> InputReport:
        """The report of the input called ``name``.

        Parameters
        ----------
        name : str
            An input's name (forward's parameter name).

        Returns
        -------
        InputReport

        Raises
        ------
        KeyError
            When no differentiated input has that name; the message lists those that do.
        """
        for report in self.inputs:
            if report.name == name:
                return report
        raise KeyError(f"no input named {name!r}; inputs: {[r.name for r in self.inputs]}")

    def finding(self, kind: str) -> Finding | None:
        """The first finding of ``kind``, or None.

        Parameters
        ----------
        kind : str
            A finding kind, such as ``mutation`` or ``timeout``.

        Returns
        -------
        Finding or None
        """
        return next((f for f in self.findings if f.kind == kind), None)

    def to_dict(self, *, maps: bool = False) -> dict[str, Any]:
        """The JSON form (``"schema": 1``): the verdict, cause, errors, inputs and findings.

        Parameters
        ----------
        maps : bool, default False
            Add each input's ``error_map``.

        Returns
        -------
        dict
            JSON-able: non-finite numbers become None.
        """
        return {
            "schema": SCHEMA_VERSION,
            "layer": self.name,
            "backend": self.backend,
            "case": self.case,
            "seed": self.seed,
            "passed": self.passed,
            "cause": self.cause,
            "max_abs_err": finite_or_none(self.max_abs_err),
            "max_rel_err": finite_or_none(self.max_rel_err),
            "kinks": self.kinks,
            "patterns": self.patterns,
            "inputs": [r.to_dict(maps=maps) for r in self.inputs],
            "findings": [f.to_dict() for f in self.findings],
            "calls": dict(self.calls),
            "seconds": round(self.seconds, 6),
            "settings": jsonable(self.settings),
            "checks": {name: part.to_dict() for name, part in self.checks.items()},
        }

    def raise_for_failure(self) -> CheckResult:
        """Raise ``gk.GradientMismatch`` (an AssertionError) with the report if the check failed.

        Returns
        -------
        CheckResult
            ``self``, when it passed.

        Raises
        ------
        GradientMismatch
            When it failed; its ``result`` is this result.
        """
        __tracebackhide__ = True  # pytest shows the caller's line, not this one
        if not self.passed:
            raise GradientMismatch(str(self), self)
        return self

    def __str__(self) -> str:
        return render_text(self)

    def __bool__(self) -> bool:
        return self.passed


# -- the plain text behind print(result) -----------------------------------------------------


def render_text(result: CheckResult) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [f"gradcheck {result.name} [{result.backend}] {verdict}", f"  case: {result.case}"]
    for report in result.inputs:
        lines.append(_input_line(report))
        if not report.passed:
            lines += _failure_detail(report)
    lines += [_finding_line(f) for f in result.findings]
    lines += [_part_line(part) for part in result.checks.values()]
    calls = ", ".join(f"{k} {v}" for k, v in sorted(result.calls.items()))
    lines.append(f"  seed {result.seed}; calls: {calls}; {result.seconds:.3f} s")
    if result.passed and not result.settings.get("reference", True):
        lines.append(f"  {NO_REFERENCE}")
    return "\n".join(lines)


# A backward that is the exact gradient of a wrong forward passes any gradient check.
NO_REFERENCE = (
    "note: backward matches this forward; a bug in the forward itself is invisible without a "
    "reference: add reference=<a torch function of the same math>"
)


def _input_line(r: InputReport) -> str:
    shape = ",".join(str(n) for n in r.shape)
    status = "ok" if r.passed else "FAIL"
    kinks = f", {r.kinks} kinks" if r.kinks else ""
    relative = "- (numeric gradient 0)" if r.max_rel_err == float("inf") else num(r.max_rel_err)
    return (
        f"  {status:4} {r.name} {r.dtype}[{shape}] {r.mode}: max abs err {num(r.max_abs_err)}, "
        f"max rel err {relative} over {r.checked} probes{kinks}"
    )


def _failure_detail(r: InputReport) -> list[str]:
    where = f" at {list(r.worst_index)}" if r.worst_index is not None else " (projection)"
    lines = [
        f"       worst{where}: analytic {num(r.analytic, 7)} vs numeric {num(r.numeric, 7)} "
        f"(tolerance {num(r.tolerance)}); {r.failing} failing"
    ]
    if r.cause:
        lines.append(f"       likely cause: {r.cause}")
    if r.note:
        lines.append(f"       note: {r.note}")
    return lines


def _part_line(part: CheckPart) -> str:
    status = {PASSED: "ok", FAILED: "FAIL", SKIPPED: "skip"}.get(part.status, part.status)
    calls = ", ".join(f"{k} {v}" for k, v in sorted(part.calls.items()))
    cost = f" ({calls}; {part.seconds:.3f} s)" if calls else ""
    line = f"  {status:4} [{part.name}] {part.message}{cost}"
    if part.cause:
        line += f"\n       cause: {part.cause}"
    return line


def _finding_line(f: Finding) -> str:
    tag = "error" if f.is_error else "warning"
    line = f"  {tag}: [{f.kind}] {f.message}"
    if f.traceback:
        tail = f.traceback.strip().splitlines()[-3:]
        line += "\n" + "\n".join("       " + t for t in tail)
    return line
