"""Stage 3 of a check: the gradient itself, against finite differences.

From what the contract stages observed, decide where differences run (``evaluation_point``),
judge every differentiable input element-wise or by projections, retry once where the layer
turns out to be coarser than it looks (it rounds its inputs to a coarser grid inside, or its
float64 backward rounds like float32), judge ties jointly, diagnose every failing input, and
compare a low-precision gradient with the layer's own float64 one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._diagnosis import patterns, where
from .._diagnosis.explain import explain
from .._engine import lowprec, partner_kinks, shared_kinks, ties
from .._engine.calls import LayerCalls, Observed
from .._engine.elementwise import elementwise_report
from .._engine.evaluation import Evaluation, build_setup, evaluation_point, regrid, rounded_inside
from .._engine.precision import low_precision_verdicts, precision_findings
from .._engine.projection import JointVerdict, joint_verdict, projection_reports
from .._engine.setup import Setup
from .._engine.tolerances import ANALYTIC_ULPS, step_fraction, summation_factor
from .._ground.backends import dtype_name, eps, to_numpy
from .._result import WARNING, Finding, InputReport

ELEMENTWISE_LIMIT = 512  # auto mode probes a failing input element-wise up to this many in total
ELEMENTWISE_MAX = 50_000  # element-wise beyond this many elements switches to projections
ELEMENTWISE_SECONDS = 120.0  # ... and so does an estimated element-wise cost beyond this


@dataclass
class GradientVerdict:
    """What stage 3 found: per-input reports, findings, the settings it used."""

    evaluation: Evaluation
    reports: list[InputReport]
    findings: list[Finding] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def judge_gradients(
    calls: LayerCalls, observed: Observed, forward_seconds: float, *, referenced: bool
) -> GradientVerdict:
    """Stage 3 on ``observed``: every usable input's report, diagnosed where it failed;
    ``referenced``: a torch reference will judge low-precision gradients too."""
    evaluation = evaluation_point(calls, observed)
    verdict = GradientVerdict(evaluation, [])
    mode = _mode(calls, observed, verdict, forward_seconds)
    setup, reports, evaluation = _judge(evaluation, mode)
    verdict.evaluation = evaluation
    for report in reports:
        ties.amend(setup, report)
    shared_kinks.amend(setup, reports)
    partner_kinks.amend(setup, reports)
    for report in reports:
        report.dtype = dtype_name(calls.plan.inputs[report.index])
        if not report.passed:
            explain(report, setup, first_input=report.index == observed.usable[0], params=calls.plan.params)
    verdict.reports = reports
    verdict.findings += precision_findings(evaluation)
    verdict.findings += low_precision_findings(low_precision_verdicts(evaluation), calls, observed)
    if not referenced:
        verdict.findings += _coarse_grid_warnings(evaluation)
    verdict.settings.update(evaluation.settings)
    return verdict


def _judge(evaluation: Evaluation, mode: str) -> tuple[Setup, list[InputReport], Evaluation]:
    """Reports per usable input: every element probed ("elementwise"); projections, a failure
    localized on its worst block ("projection"); or projections, a failing input then probed
    element by element for its full error map ("auto", on small problems). Where the layer
    computes coarser than it looks (``_coarser``), it is judged at that precision instead, and
    the evaluation it was judged at is returned too."""
    if mode == "elementwise":
        setup, reports = _elementwise(evaluation)
        coarser = _coarser(evaluation, [r.index for r in reports if not r.passed])
        if coarser is None:
            return setup, reports, evaluation
        return (*_elementwise(coarser), coarser)
    setup, joint = _joint(evaluation)
    coarser = None if joint.passed else _coarser(evaluation, evaluation.usable)
    if coarser is not None:  # found before localizing anything (the costly part of a failure)
        evaluation = coarser
        setup, joint = _joint(evaluation)
    setup, reports = _projected(evaluation, mode, setup, joint)
    if coarser is None:  # a joint pass can still fail on the zeros and ties probed alone
        coarser = _coarser(evaluation, [r.index for r in reports if not r.passed])
        if coarser is not None:
            evaluation = coarser
            setup, reports = _projected(evaluation, mode, *_joint(evaluation))
    return setup, reports, evaluation


def _projected(
    evaluation: Evaluation, mode: str, setup: Setup, joint: JointVerdict
) -> tuple[Setup, list[InputReport]]:
    reports = projection_reports(setup, evaluation.usable, _directions(setup, evaluation.usable), joint)
    if mode == "auto":  # the exact verdict where a projection failed, and the map to diagnose
        reports = [r if r.passed else elementwise_report(setup, r.index) for r in reports]
    return setup, reports


def _elementwise(evaluation: Evaluation) -> tuple[Setup, list[InputReport]]:
    setup = build_setup(evaluation)
    return setup, [elementwise_report(setup, i) for i in evaluation.usable]


def _directions(setup: Setup, usable: list[int]) -> int:
    # One random direction misses a bug only if <error, d> falls under the tolerance: with
    # float64 differences that is ~1e-7 of the signal, so one direction suffices; rounding
    # to a float32 grid leaves ~1e-3, and a second direction squares the miss probability.
    return 1 if all(setup.objective.grid[i] == "float64" for i in usable) else 2


def _joint(evaluation: Evaluation) -> tuple[Setup, JointVerdict]:
    setup = build_setup(evaluation)
    return setup, joint_verdict(setup, evaluation.usable, _directions(setup, evaluation.usable))


def _coarser(evaluation: Evaluation, failing: list[int]) -> Evaluation | None:
    """``evaluation`` at the precision the layer really has, where a failing input shows it is
    coarser than assumed; None where nothing is (a correct layer passes at its real precision,
    a wrong one still fails there)."""
    if not failing:
        return None
    rounded = rounded_inside(evaluation, failing)
    evaluation = regrid(evaluation, rounded) if rounded else evaluation
    rough = _rough_backward(evaluation, evaluation.usable)  # one backward: all its gradients
    if rough:
        evaluation.analytic_eps.update(rough)
        names = evaluation.names
        evaluation.settings["backward_precision"] = {names[i]: _nearest_dtype(e) for i, e in rough.items()}
    return evaluation if rounded or rough else None


def _rough_backward(evaluation: Evaluation, inputs: list[int]) -> dict[int, float]:
    """Inputs whose analytic gradient rounds far more coarsely than its dtype (a float64 backward
    that upcasts to float32 inside: ``x.float()`` on a float64 tensor casts it down), and the
    epsilon its measured rounding shows: the linearity residual against the gradient's peak."""
    found = {}
    for i in inputs:
        gradient = to_numpy(evaluation.gradients[i]).astype(np.float64)
        peak = float(np.max(np.abs(gradient))) if gradient.size else 0.0
        residual = evaluation.rounding_scale(i)
        expected = ANALYTIC_ULPS * evaluation.analytic_eps[i] * summation_factor(gradient.size) * peak
        if peak > 0 and residual > expected:
            found[i] = max(evaluation.analytic_eps[i], residual / peak)
    return found


def _nearest_dtype(epsilon: float) -> str:
    """The finest floating dtype whose epsilon covers a measured one (for the report)."""
    for dtype in ("float64", "float32", "bfloat16"):
        if eps(dtype) * ANALYTIC_ULPS >= epsilon:
            return dtype
    return "float16"


def low_precision_findings(
    verdicts: list[lowprec.LowVerdict], calls: LayerCalls, observed: Observed
) -> list[Finding]:
    """A ``precision`` finding per failed low-precision verdict, with the cause its maps name."""
    names = calls.plan.names
    return [
        lowprec.finding(v, _low_cause(v, names.index(v.name), names.index(v.name) == observed.usable[0]))
        for v in verdicts
        if not v.passed
    ]


def _low_cause(verdict: lowprec.LowVerdict, index: int, first_input: bool) -> str | None:
    """The diagnosis of a low-precision gradient's error, from its maps (analytic: the
    low-precision gradient, numeric: the high-precision one), to the precision its rounding
    allows a fit."""
    failing = verdict.failing if verdict.failing.any() else np.ones(verdict.low.shape, dtype=bool)
    report = InputReport(verdict.name, index, verdict.low.shape, verdict.dtype, "precision", False)
    report.analytic_map, report.numeric_map, report.failing_map = verdict.low, verdict.high, failing
    report.error_map = np.abs(verdict.low - verdict.high)
    report.tolerance_map = lowprec.ELEMENT_ULPS * verdict.scale
    norm = float(np.linalg.norm(verdict.high))
    report.evidence["fit"] = 2 * float(np.linalg.norm(verdict.scale)) / norm if norm > 0 else 1.0
    found = patterns.diagnose(report, None, first_input=first_input)
    if found:
        return found[0].message
    place = where.describe(report, first_input=first_input)
    return f"the error sits {place}" if place else None


def _coarse_grid_warnings(evaluation: Evaluation) -> list[Finding]:
    """Finite differences on a float16/bfloat16 grid take steps of a large fraction of the
    values: they only see errors far above that dtype's rounding. Say so, and how to do better."""
    found = []
    for i, grid in evaluation.grid.items():
        if lowprec.is_low(grid):
            name = evaluation.names[i]
            found.append(
                Finding(
                    "precision",
                    f"{name} is differenced on the {grid} grid (the layer computes in {grid}): finite "
                    f"differences there take steps of {step_fraction(grid):.0%} of the values and see only "
                    f"errors far above {grid} rounding; give reference=<a torch function of the same math> "
                    f"for a check as tight as {grid} rounding allows",
                    severity=WARNING,
                    input=name,
                )
            )
        elif coarse := evaluation.settings.get("float64_backward_dtype", {}).get(evaluation.names[i]):
            name = evaluation.names[i]
            found.append(
                Finding(
                    "precision",
                    f"backward returns {coarse} for {name} even from float64 inputs: its gradient is only "
                    f"held to {coarse} rounding, which projections cannot resolve finely (an error of tens "
                    f"of percent can pass); return the input's dtype, or give reference=<a torch function "
                    f"of the same math>",
                    severity=WARNING,
                    input=name,
                )
            )
    return found


def _mode(calls: LayerCalls, observed: Observed, verdict: GradientVerdict, forward_seconds: float) -> str:
    """The mode asked for ("auto": projections, and element by element where one fails up to
    ELEMENTWISE_LIMIT elements), unless element-wise would cost too much (~4 forward calls per
    element): then projections."""
    total = sum(math.prod(observed.originals[i].shape) for i in observed.usable)
    mode = calls.plan.mode
    if mode == "auto" and total > ELEMENTWISE_LIMIT:
        mode = "projection"
    seconds = 4 * total * forward_seconds
    if mode == "elementwise" and (total > ELEMENTWISE_MAX or seconds > ELEMENTWISE_SECONDS):
        verdict.findings.append(
            Finding(
                "budget",
                f"element-wise mode would take ~{4 * total} forward calls (~{seconds:.0f} s) for {total} "
                f"elements (limits: {ELEMENTWISE_MAX} elements, {ELEMENTWISE_SECONDS:.0f} s); switched "
                "to projections",
                severity=WARNING,
            )
        )
        mode = "projection"
    verdict.settings["mode_used"] = "projection" if mode == "auto" else mode
    return mode
