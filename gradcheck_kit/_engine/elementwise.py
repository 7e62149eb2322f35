"""The gradient check element by element.

Element-wise mode probes every element of every differentiable input and so yields a full
error map; it also confirms a failed projection on the worst block (``projection``). Each probe
is differenced at two step sizes and retried at smaller ones where it fails (``REFINEMENTS``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._oracles.finite_diff import Judgement, element_differences, judge, merge, subset
from .._oracles.taylor import taylor_test
from .._result import InputReport
from .directions import OWN_SCALE, masked_direction
from .setup import Setup
from .tolerances import element_steps
from .verdicts import input_report, ratio

REFINEMENTS = (8.0, 64.0)  # retry failing probes at t/8 and t/64: kinks and curvature fade
BORDERLINE = 10.0  # a failure within 10x its tolerance earns a Taylor second opinion
# A jump: the one-sided change beyond the analytic prediction holds within 2x while the step
# shrinks 64x (a wrong slope's shrinks with the step, 64x), above twice the bound on rounding noise
JUMP_HOLDS = 2.0
JUMP_NOISE = 2.0  # times the bound on rounding noise (which does not shrink with the step either)


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
    seen = [(np.ones(flat_index.size, dtype=bool), verdict)]  # (probes, their verdicts) per step
    for scale in REFINEMENTS:
        failing = ~verdict.passed
        if not failing.any():
            break
        retry = at(scale, flat_index[failing], steps[failing])
        seen.append((failing, retry))
        verdict = adopt(verdict, failing, retry)
    _pass_jumps(verdict, seen)
    verdict = _own_scale_retry(verdict, flat_index, values[flat_index], steps, setup.fractions[i], at)
    return _convex_retry(setup, i, flat_index, verdict)


def _own_scale_retry(
    verdict: Judgement,
    flat_index: np.ndarray,
    values: np.ndarray,
    steps: np.ndarray,
    fraction: float,
    at: Callable[[float, np.ndarray, np.ndarray], Judgement],
) -> Judgement:
    """Failing probes of elements far smaller than their input's scale, which sets their step
    (so that zeros get one): even t / 64 moves a 1e-6 element of a tensor whose RMS is 1e4 by
    far more than itself (out of log's domain, or across its row's whole normalization). They
    are differenced once more with a step that is the usual fraction of their own magnitude;
    its pass is taken where it resolves the error (``adopt``; an error or tolerance that was NaN,
    a step out of the domain, counts as unbounded), its failure where it fails too."""
    small = ~verdict.passed & (values != 0) & (steps > OWN_SCALE * fraction * np.abs(values))
    if not small.any():
        return verdict
    retry = at(1.0, flat_index[small], fraction * np.abs(values[small]))
    measured = np.isfinite(verdict.error[small]) & np.isfinite(verdict.tolerance[small])
    before = np.where(measured, verdict.error[small], np.inf)  # a NaN on either side: unmeasured
    verdict = adopt(verdict, small, retry, before)
    # where the retry fails too, its numbers are the ones that mean something (the first step
    # left the element's own scale): the report and the diagnosis read them
    failed = small.copy()
    failed[small] = ~retry.passed
    return merge(verdict, subset(retry, ~retry.passed), failed)


def _pass_jumps(verdict: Judgement, seen: list[tuple[np.ndarray, Judgement]]) -> None:
    """Failing probes where F itself jumps: not differentiable there, so no gradient can be
    judged (backward as a function of x, in a second-order check, jumps at forward's kinks: relu
    at 0). Told by the one-sided change beyond the analytic prediction holding still while the
    step shrinks 64x, above twice the bound on rounding, where a wrong slope's shrinks with the
    step. They pass as kinks (nonsmooth points), counted in the report's kinks."""
    if len(seen) <= len(REFINEMENTS):
        return
    residuals = np.full((len(seen), verdict.passed.size), np.nan)
    widths = np.full_like(residuals, np.nan)
    floor = np.zeros(verdict.passed.size)
    for level, (probes, judged) in enumerate(seen):
        residuals[level, probes] = judged.residual
        widths[level, probes] = judged.width
        floor[probes] = np.maximum(floor[probes], judged.noise)
    jumps = ~verdict.passed & ~np.isnan(residuals).any(axis=0) & jumped(residuals, widths, floor)
    verdict.passed[jumps] = True
    verdict.kink[jumps] = True
    verdict.error[jumps] = 0.0


def jumped(residuals: np.ndarray, widths: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Per probe (columns), whether its one-sided residuals over steps shrinking REFINEMENTS[-1]
    times (rows, first to last) held within JUMP_HOLDS of each other, far above ``floor``."""
    seen = ~np.isnan(residuals)  # (NumPy's nanmin warns on columns never seen)
    most = np.max(np.where(seen, residuals, -np.inf), axis=0)
    least = np.min(np.where(seen, residuals, np.inf), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        holds = most <= JUMP_HOLDS * least
        shrank = widths[-1] <= widths[0] / (REFINEMENTS[-1] / 4)  # not held up by a grid
        large = least > JUMP_NOISE * floor
    return holds & shrank & large


def _convex_retry(setup: Setup, i: int, flat_index: np.ndarray, verdict: Judgement) -> Judgement:
    """Kinks shared by several max-type terms (a tie in overlapping pooling windows) with
    grad_output of mixed signs make F neither convex nor concave, and then the one-sided slopes
    of one coordinate do not bound every valid subgradient. With |grad_output| such an F is
    convex, where they do: failing kinks get a second look under |grad_output|."""
    suspects = ~verdict.passed & verdict.nonsmooth
    if not suspects.any():
        return verdict
    convex = setup.convex()
    if convex is None:
        return verdict
    retry = judge_elements(convex, i, flat_index[suspects])
    accepted = retry.passed & retry.kink
    verdict.passed[np.flatnonzero(suspects)[accepted]] = True
    verdict.kink[np.flatnonzero(suspects)[accepted]] = True
    verdict.error[np.flatnonzero(suspects)[accepted]] = 0.0
    return verdict


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
    return input_report(setup.names[i], i, "elementwise", index, verdict, setup.host_gradients[i])


def _second_opinion_elements(setup: Setup, i: int, index: np.ndarray, verdict: Judgement) -> Judgement:
    """Borderline failures: one Taylor test along them; order 2 overturns, order 1 confirms."""
    failing = ~verdict.passed
    if not failing.any() or ratio(verdict.error, verdict.tolerance)[failing].max() > BORDERLINE:
        return verdict
    mask = np.zeros(setup.host_values[i].size)
    mask[index[failing]] = 1.0
    direction = masked_direction(setup, i, mask)
    result = taylor_test(setup.objective, direction, setup.gradients64, setup.noise, first_step=1.0)
    if result.consistent:
        verdict.passed[failing] = True
    return verdict
