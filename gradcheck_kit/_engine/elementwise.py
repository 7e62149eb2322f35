"""The gradient check proper, element by element, and what both modes share.

Element-wise mode probes every element of every differentiable input and so yields a full
error map; it also confirms a failed projection on the worst block (``projection``). Each probe
is differenced at two step sizes and retried at smaller ones where it fails (``REFINEMENTS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._ground.backends import Backend
from .._oracles.finite_diff import Judgement, Objective, element_differences, judge, merge, subset
from .._oracles.taylor import taylor_test
from .._result import InputReport
from .directions import masked_direction
from .tolerances import analytic_slack, element_steps

REFINEMENTS = (8.0, 64.0)  # retry failing probes at t/8 and t/64: kinks and curvature fade
BORDERLINE = 10.0  # a failure within 10x its tolerance earns a Taylor second opinion


@dataclass
class Setup:
    """Everything the gradient check needs, prepared by ``checks``."""

    objective: Objective
    noise: float  # absolute rounding noise of F(x + d) - F(x) when every output moves (Taylor)
    names: list[str]
    gradients64: dict[int, Any]  # analytic gradient per input, float64 on the device
    host_gradients: dict[int, np.ndarray]
    host_values: dict[int, np.ndarray]  # the base point, float64 on the host
    fractions: dict[int, float]  # relative step per input (from its grid dtype)
    analytic_eps: dict[int, float]
    noise_eps: float = 0.0  # noise per unit of sum |dy y| over the outputs a probe moves
    rtol: float | None = None
    atol: float | None = None
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    convex: Callable[[], Setup | None] | None = None  # the same check with |grad_output|
    _convex_setup: Any = None
    _slack: dict[int, tuple[float, float]] = field(default_factory=dict)

    @property
    def backend(self) -> Backend:
        return self.objective.backend

    def slack(self, i: int) -> tuple[float, float]:
        if i not in self._slack:  # asked per probe batch; the gradient's peak is a pass over it
            self._slack[i] = analytic_slack(self.analytic_eps[i], self.host_gradients[i])
        rtol, atol = self._slack[i]
        return (
            self.rtol if self.rtol is not None else rtol,
            self.atol if self.atol is not None else atol,
        )


# -- element-wise -------------------------------------------------------------------------


def judge_elements(setup: Setup, i: int, flat_index: np.ndarray) -> Judgement:
    values = setup.host_values[i].reshape(-1)
    steps = element_steps(values, setup.fractions[i])[flat_index]
    g = setup.host_gradients[i].reshape(-1)
    rtol, atol = setup.slack(i)

    def at(scale: float, index: np.ndarray, step: np.ndarray) -> Judgement:
        coarse = element_differences(setup.objective, i, index, step / scale, g)
        fine = element_differences(setup.objective, i, index, step / (2 * scale), g)
        return judge(coarse, fine, setup.noise_eps, rtol, atol)

    verdict = at(1.0, flat_index, steps)
    for scale in REFINEMENTS:
        failing = ~verdict.passed
        if not failing.any():
            break
        retry = at(scale, flat_index[failing], steps[failing])
        verdict = adopt(verdict, failing, retry)
    return _convex_retry(setup, i, flat_index, verdict)


def _convex_retry(setup: Setup, i: int, flat_index: np.ndarray, verdict: Judgement) -> Judgement:
    """Kinks shared by several max-type terms (a tie in overlapping pooling windows) with
    grad_output of mixed signs make F neither convex nor concave, and then the one-sided slopes
    of one coordinate do not bound every valid subgradient. With |grad_output| such an F is
    convex, where they do: failing kinks get a second look under |grad_output|."""
    suspects = ~verdict.passed & verdict.nonsmooth
    if not suspects.any():
        return verdict
    convex = convex_of(setup)
    if convex is None:
        return verdict
    retry = judge_elements(convex, i, flat_index[suspects])
    accepted = retry.passed & retry.kink
    verdict.passed[np.flatnonzero(suspects)[accepted]] = True
    verdict.kink[np.flatnonzero(suspects)[accepted]] = True
    verdict.error[np.flatnonzero(suspects)[accepted]] = 0.0
    return verdict


def convex_of(setup: Setup) -> Setup | None:
    """The same check with |grad_output|, built once on first use (None when the layer's
    backward cannot give it). Only the caller's own setup has one: ``convex`` is None in it."""
    if setup.convex is None:
        return None
    if setup._convex_setup is None:  # None: not built yet; False: could not be built
        setup._convex_setup = setup.convex() or False
        if setup._convex_setup:
            setup._convex_setup.convex = None
    return setup._convex_setup or None


def adopt(
    verdict: Judgement, failing: np.ndarray, retry: Judgement, before: np.ndarray | None = None
) -> Judgement:
    """Take a smaller step's pass only where it resolves the discrepancy (``before``: the
    original error unless given): the error must shrink at least 4x (a wrong gradient's does
    not shrink with the step) and the retry's own measured uncertainty must stay well below the
    error it explains (else it proves nothing: a smaller step only buys more rounding noise)."""
    before = verdict.error[failing] if before is None else before
    shrank = retry.error <= 0.25 * before
    resolves = retry.passed & shrank & (retry.spread + retry.error < 0.5 * before)
    better = np.zeros_like(failing)
    better[failing] = resolves
    return merge(verdict, subset(retry, resolves), better)


def elementwise_report(setup: Setup, i: int) -> InputReport:
    shape = setup.host_values[i].shape
    index = np.arange(int(np.prod(shape)))
    verdict = judge_elements(setup, i, index)
    verdict = _second_opinion_elements(setup, i, index, verdict)
    return input_report(setup, i, "elementwise", index, verdict, shape)


def _second_opinion_elements(setup: Setup, i: int, index: np.ndarray, verdict: Judgement) -> Judgement:
    """Borderline failures: one Taylor test along them; order 2 overturns, order 1 confirms."""
    failing = ~verdict.passed
    ratio = verdict.error / np.maximum(verdict.tolerance, 1e-300)
    if not failing.any() or ratio[failing].max() > BORDERLINE:
        return verdict
    mask = np.zeros(setup.host_values[i].size)
    mask[index[failing]] = 1.0
    direction = masked_direction(setup, i, mask)
    result = taylor_test(setup.objective, direction, setup.gradients64, setup.noise, first_step=1.0)
    if result.consistent:
        verdict.passed[failing] = True
    return verdict


# -- reporting --------------------------------------------------------------------------------


def input_report(
    setup: Setup, i: int, mode: str, index: np.ndarray, verdict: Judgement, shape: tuple[int, ...]
) -> InputReport:
    report = InputReport(setup.names[i], i, shape, "", mode, bool(verdict.passed.all()))
    report.checked = index.size
    report.kinks = int(verdict.kink.sum())
    report.failing = int((~verdict.passed).sum())
    fill_worst(report, verdict, index, shape)
    attach_maps(report, setup, i, index, verdict)
    return report


def attach_maps(report: InputReport, setup: Setup, i: int, index: np.ndarray, verdict: Judgement) -> None:
    shape = setup.host_values[i].shape

    def full(values: np.ndarray) -> np.ndarray:
        out = np.full(int(np.prod(shape)), np.nan)
        out[index] = values
        return out.reshape(shape)

    report.numeric_map = full(verdict.numeric)
    report.error_map = full(verdict.error)
    report.tolerance_map = full(verdict.tolerance)
    report.moved_map = full(verdict.moved)
    report.failing_map = full(~verdict.passed) == 1.0
    report.kink_map = full(verdict.kink) == 1.0
    report.analytic_map = setup.host_gradients[i].reshape(shape).copy()


def relative_error(error: np.ndarray, numeric: np.ndarray) -> float:
    """The largest error relative to the numeric gradient (elements near 0 measured against a
    thousandth of its peak); inf when the numeric gradient is 0 everywhere and the error is not:
    a relative error of 1e303 would only hide that."""
    scale = float(np.max(np.abs(numeric))) if numeric.size else 0.0
    if scale == 0.0:
        return float("inf") if float(np.max(error, initial=0.0)) > 0 else 0.0
    return float(np.max(error / np.maximum(np.abs(numeric), 1e-3 * scale)))


def fill_worst(
    report: InputReport, verdict: Judgement, index: np.ndarray | None, shape: tuple[int, ...]
) -> None:
    if verdict.error.size == 0:
        return
    ratio = verdict.error / np.maximum(verdict.tolerance, 1e-300)
    k = int(np.argmax(ratio)) if not verdict.passed.all() else int(np.argmax(verdict.error))
    report.max_abs_err = float(verdict.error.max())
    report.max_rel_err = relative_error(verdict.error, verdict.numeric)
    report.numeric = float(verdict.numeric[k])
    report.analytic = float(verdict.analytic[k])
    report.tolerance = float(verdict.tolerance[k])
    if index is not None and shape:
        report.worst_index = tuple(int(v) for v in np.unravel_index(int(index[k]), shape))
    elif index is not None:
        report.worst_index = ()


__all__ = ["BORDERLINE", "REFINEMENTS", "Setup", "adopt", "convex_of", "elementwise_report", "judge_elements"]
