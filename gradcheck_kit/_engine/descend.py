"""Verdicts along directions: the first look, then smaller steps for the probes not yet
settled, down to t/32768 while an error keeps shrinking or kinks show; a Taylor test
arbitrates near-misses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .._ground.backends import to_numpy
from .._oracles.finite_diff import Judgement, direction_differences, direction_pair, judge, merge, subset
from .._oracles.taylor import taylor_test
from .elementwise import BORDERLINE, REFINEMENTS, adopt, jumped
from .setup import Setup
from .tolerances import analytic_slack
from .verdicts import ratio

CONVERGING = 2.0  # a projection refines further while its error shrinks 2x per 8x smaller step
SPREAD_LEAN = 4.0  # a pass whose spread allowance is over 4x its noise and slack gets confirmed
DEEPEST = 8.0**5  # ... down to t/32768
STABLE = 0.25  # an error moving under 25% while the step shrinks 8x is the gradient's own
SHARP = 1e-3  # a pass along directions stepped by each element's own magnitude must see 0.1%


def judge_directions(
    setup: Setup,
    directions: list[dict[int, Any]],
    inputs: list[int],
    *,
    quick: bool = False,
    first: Judgement | None = None,
    support_slack: bool = False,
) -> Judgement:
    """Verdicts along ``directions``; ``quick`` (ranking blocks while localizing) stops after the
    usual refinements and skips the Taylor second opinion, which only flips pass/fail; ``first``:
    the first look (``judged_at`` scale 1), where the caller has taken it already;
    ``support_slack``: the analytic slack from the gradient's peak over the elements a direction
    moves, not over its whole input (``_direction_atol``)."""
    at = partial(judged_at, setup, inputs=inputs, support_slack=support_slack)
    verdict, trail = _descend(at, directions, quick, first)
    if not quick:
        _second_opinions(setup, directions, verdict, trail)
    return verdict


def judged_at(
    setup: Setup,
    scale: float,
    directions: list[dict[int, Any]],
    *,
    inputs: list[int],
    interpolated: bool = True,
    support_slack: bool = False,
) -> Judgement:
    """Verdicts along ``directions`` at the step t / ``scale`` (and half of it): the first look
    (scale 1) takes three calls on a float64 grid, F(x - t/2) read off a cubic, unless not
    ``interpolated``; four elsewhere."""
    rtol = max(setup.slack(i)[0] for i in inputs)
    exact_steps = all(setup.objective.grid[i] == "float64" for i in inputs)
    if scale == 1.0 and exact_steps and interpolated:
        coarse, fine = direction_pair(setup.objective, directions, 1.0, setup.gradients64)
    else:
        coarse = direction_differences(setup.objective, directions, 1.0 / scale, setup.gradients64)
        fine = direction_differences(setup.objective, directions, 0.5 / scale, setup.gradients64)
    atol = _direction_atol(setup, directions, inputs, support_slack)
    return judge(coarse, fine, setup.noise_eps, rtol, atol)


def jumps_along(setup: Setup, directions: list[dict[int, Any]], inputs: list[int]) -> np.ndarray:
    """Per direction, whether F itself jumps along it at the base point (a relu backward at
    relu's kink, in a second-order check): the one-sided change beyond the analytic prediction
    holds while the step shrinks 64x. Such a direction proves nothing about the gradient. Every
    side is evaluated (a cubic through a jump says nothing of it)."""
    seen = [
        judged_at(setup, scale, directions, inputs=inputs, interpolated=False)
        for scale in (1.0, REFINEMENTS[-1])
    ]
    residuals = np.stack([j.residual for j in seen])
    widths = np.stack([j.width for j in seen])
    return jumped(residuals, widths, np.maximum(seen[0].noise, seen[1].noise))


@dataclass
class _Trail:
    """What each probe showed at the smallest steps it was given."""

    size: np.ndarray  # discrepancy: error or spread, whichever is larger
    ratio: np.ndarray  # error / tolerance
    errors: list[np.ndarray]  # raw errors at the last two steps (NaN: only one step seen)


def _descend(
    at: Callable[[float, list[dict[int, Any]]], Judgement],
    directions: list[dict[int, Any]],
    quick: bool,
    first: Judgement | None = None,
) -> tuple[Judgement, _Trail]:
    """The first look (``first``, where given), then smaller steps for the probes not yet
    settled: failing ones (the usual refinements, then on while converging, kinked or moving)
    and, unless ``quick``, passes that leaned on the spread or a kink."""
    verdict = at(1.0, directions) if first is None else first
    trail = _Trail(
        _discrepancy(verdict), ratio_of(verdict), [np.full(len(directions), np.nan), _raw_error(verdict)]
    )
    pending = ~verdict.passed | (_unsettled(verdict) & (not quick))
    for depth, scale in enumerate(REFINEMENTS if quick else _direction_refinements(), 1):
        if not pending.any():
            break
        retry = at(scale, [d for d, f in zip(directions, pending) if f])
        verdict = _refine(verdict, pending, retry, trail.size)
        converging = _discrepancy(retry) <= trail.size[pending] / CONVERGING
        trail.size[pending], trail.ratio[pending] = _discrepancy(retry), ratio_of(retry)
        errors = trail.errors
        errors[0][pending], errors[1][pending] = errors[1][pending], _raw_error(retry)
        settled = _stable(errors[0][pending], errors[1][pending])  # a wrong gradient's signature
        unresolved = converging | _kinked(retry) | ~settled | (depth < len(REFINEMENTS))
        keep_going = ~verdict.passed[pending] & unresolved
        pending[pending] = keep_going | (_unsettled(retry) & (not quick))
    return verdict, trail


def _second_opinions(
    setup: Setup, directions: list[dict[int, Any]], verdict: Judgement, trail: _Trail
) -> None:
    """A Taylor test arbitrates near-misses, judged at the smallest step (a wrong gradient can
    look borderline at the first step while kinks crossed by it blur the difference), unless the
    error already held still while the step shrank 8x: a wrong gradient's signature, and kinks
    make a Taylor test's observed orders erratic."""
    failing = ~verdict.passed & ~_stable(*trail.errors)
    for k in np.flatnonzero(failing & (trail.ratio <= BORDERLINE)):
        opinion = taylor_test(setup.objective, directions[k], setup.gradients64, setup.noise)
        verdict.passed[k] = bool(opinion.consistent)


def ratio_of(verdict: Judgement) -> np.ndarray:
    """error / tolerance per probe."""
    return ratio(verdict.error, verdict.tolerance)


def _raw_error(verdict: Judgement) -> np.ndarray:
    """|numeric - analytic| at the finer step, also where a kink pass counted it as 0."""
    return np.abs(verdict.numeric - verdict.analytic)


def _stable(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The error held still while the step shrank 8x (NaN before: only one step seen)."""
    with np.errstate(invalid="ignore"):
        return np.abs(after - before) <= STABLE * after


def _kinked(verdict: Judgement) -> np.ndarray:
    """The one-sided slopes differ as much as the error: a kink crossed close to the base point
    (an element a hair from ReLU's 0), which only a smaller step gets past. A wrong gradient of
    a smooth function leaves the one-sided slopes together."""
    plus, minus = verdict.one_sided
    return np.abs(plus - minus) >= _raw_error(verdict)


def _discrepancy(verdict: Judgement) -> np.ndarray:
    """How far off a probe is at its step: its error, or the spread between its two step
    sizes if larger (a lucky cancellation can make the error small, not the spread)."""
    return np.maximum(_raw_error(verdict), verdict.spread)


def _unsettled(verdict: Judgement) -> np.ndarray:
    """Passes that owe themselves to a large measured finite-difference uncertainty or to a kink.

    For a smooth layer the spread between the steps is truncation, tiny in float64. Kinks
    crossed by the step (millions of ReLUs within a step of 0) make both errors random and the
    spread as large as a real gradient error, and open a gap between the one-sided slopes that
    a wrong value can sit in: such passes are confirmed at the next smaller step, where fewer
    kinks are crossed (a kink at the base point itself stays, down to the smallest step)."""
    floor = verdict.tolerance - 0.5 * verdict.spread  # noise and analytic slack
    return verdict.passed & (verdict.kink | (0.5 * verdict.spread > SPREAD_LEAN * floor))


def _refine(verdict: Judgement, where: np.ndarray, retry: Judgement, last: np.ndarray) -> Judgement:
    """Fold a smaller step's verdicts (``retry``, one per probe in ``where``) in: failing probes
    take its pass only where it resolves their discrepancy, both the first one and the one at
    the previous step (``last``, error or spread: a pass bought by noise at a tiny step
    resolves neither);
    unsettled passes take its verdict, pass or fail."""
    was_passing = verdict.passed[where]
    failing, confirming = where.copy(), where.copy()
    failing[where], confirming[where] = ~was_passing, was_passing
    before = np.minimum(verdict.error[failing], last[failing])
    verdict = adopt(verdict, failing, subset(retry, ~was_passing), before)
    return merge(verdict, subset(retry, was_passing), confirming)


def _direction_refinements() -> list[float]:
    """t/8, t/64, then on by 8x while a probe's error keeps shrinking or kinks show. A projection over
    millions of elements of a piecewise-linear layer (ReLU, max pooling) crosses the kinks of
    the elements within a step of theirs: about N*t crossings, an error shrinking with t, while
    a wrong gradient's error stays. Each level costs four forward calls; the deepest step still
    differences far above float64 rounding (relative noise ~eps * DEEPEST / t ~ 1e-7)."""
    scales, scale = list(REFINEMENTS), REFINEMENTS[-1]
    while scale < DEEPEST:
        scale *= 8.0
        scales.append(scale)
    return scales


def _direction_atol(
    setup: Setup, dirs: list[dict[int, Any]], inputs: list[int], support: bool = False
) -> np.ndarray:
    """Absolute analytic slack along each direction: sum over inputs of atol_i * |d_i|_1, atol_i
    from the peak of |g_i| over the whole input, or (``support``) over the elements d_i moves."""
    xp = setup.backend.xp
    out = np.zeros(len(dirs))
    for k, d in enumerate(dirs):
        for i in d:
            atol = _support_atol(setup, i, d[i]) if support else setup.slack(i)[1]
            out[k] += atol * setup.backend.scalar(xp.sum(xp.abs(d[i])))
    return out


def _support_atol(setup: Setup, i: int, d: Any) -> float:
    """The analytic atol of input i earned by the gradient's peak where ``d`` moves it (the
    caller's atol where given): rows of a tensor normalized apart earn no slack from each other."""
    if setup.atol is not None:
        return setup.atol
    moved = to_numpy(d).reshape(-1) != 0
    gradient = setup.host_gradients[i].reshape(-1)[moved]
    return analytic_slack(setup.analytic_eps[i], gradient)[1]


def sharp_pass(verdict: Judgement) -> bool:
    """Passes that could have seen a 0.1% error: a step of an element's own magnitude can sink
    its change into the rounding of outputs the size of the rest of the tensor, and a pass whose
    tolerance is as large as its prediction proves nothing."""
    return bool((verdict.passed & (verdict.tolerance <= SHARP * np.abs(verdict.analytic))).all())
