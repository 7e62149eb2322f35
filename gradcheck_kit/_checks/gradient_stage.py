"""Stage 3 of a check: the gradient itself, against finite differences.

From what the contract stages observed, decide where differences run (``evaluation_point``),
judge every differentiable input element-wise or by projections, retry on a coarser grid where
the layer turns out to round its inputs inside, judge ties jointly, diagnose every failing input,
and compare a low-precision gradient with the layer's own float64 one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._diagnosis.explain import explain
from .._engine import ties
from .._engine.calls import LayerCalls, Observed
from .._engine.elementwise import elementwise_report
from .._engine.evaluation import Evaluation, build_setup, evaluation_point, regrid, rounded_inside
from .._engine.precision import precision_findings
from .._engine.projection import projection_reports
from .._engine.setup import Setup
from .._ground.backends import dtype_name
from .._result import WARNING, Finding, InputReport

ELEMENTWISE_LIMIT = 512  # auto mode probes every element up to this many in total
ELEMENTWISE_MAX = 50_000  # element-wise beyond this many elements switches to projections
ELEMENTWISE_SECONDS = 120.0  # ... and so does an estimated element-wise cost beyond this


@dataclass
class GradientVerdict:
    """What stage 3 found: per-input reports, findings, the settings it used."""

    evaluation: Evaluation
    reports: list[InputReport]
    findings: list[Finding] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def judge_gradients(calls: LayerCalls, observed: Observed, forward_seconds: float) -> GradientVerdict:
    """Stage 3 on ``observed``: every usable input's report, diagnosed where it failed."""
    evaluation = evaluation_point(calls, observed)
    verdict = GradientVerdict(evaluation, [])
    mode = _mode(calls, observed, verdict, forward_seconds)
    setup, reports = _judge(evaluation, mode)
    rounded = rounded_inside(evaluation, [r.index for r in reports if not r.passed])
    if rounded:  # the layer rounds those inputs to a coarser grid: difference on that grid
        evaluation = verdict.evaluation = regrid(evaluation, rounded)
        setup, reports = _judge(evaluation, mode)
    for report in reports:
        ties.amend(setup, report)
        report.dtype = dtype_name(calls.plan.inputs[report.index])
        if not report.passed:
            explain(report, setup, first_input=report.index == observed.usable[0], params=calls.plan.params)
    verdict.reports = reports
    verdict.findings += precision_findings(evaluation)
    verdict.settings.update(evaluation.settings)
    return verdict


def _judge(evaluation: Evaluation, mode: str) -> tuple[Setup, list[InputReport]]:
    setup = build_setup(evaluation)
    usable = evaluation.usable
    if mode == "elementwise":
        return setup, [elementwise_report(setup, i) for i in usable]
    # One random direction misses a bug only if <error, d> falls under the tolerance: with
    # float64 differences that is ~1e-7 of the signal, so one direction suffices; rounding
    # to a float32 grid leaves ~1e-3, and a second direction squares the miss probability.
    exact = all(setup.objective.grid[i] == "float64" for i in usable)
    return setup, projection_reports(setup, usable, 1 if exact else 2)


def _mode(calls: LayerCalls, observed: Observed, verdict: GradientVerdict, forward_seconds: float) -> str:
    """The mode asked for ("auto": element-wise up to ELEMENTWISE_LIMIT elements), unless
    element-wise would cost too much (~4 forward calls per element): then projections."""
    total = sum(int(np.prod(tuple(observed.originals[i].shape))) for i in observed.usable)
    mode = calls.plan.mode
    if mode == "auto":
        mode = "elementwise" if total <= ELEMENTWISE_LIMIT else "projection"
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
    verdict.settings["mode_used"] = mode
    return mode
