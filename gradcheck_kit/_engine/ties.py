"""Ties judged jointly: the gradient must lie in the subdifferential, a convex set, not in a box
of per-element intervals.

Element by element, each of k tied maxima sits on a kink and accepts anything between its
one-sided slopes, 0 and dy: so a max-pool backward giving the full dy to every tied element (the
``mask = window == window.max()`` idiom) passes every per-element probe. Along the tied elements
*together* the function is smooth (shifting all of them by t shifts the maximum by t), with slope
sum(dy), while that backward gives k * sum(dy). So each group of equal values is also moved as a
whole: where that direction is smooth, the analytic sum over the group must match the slope.
First-argmax, last-argmax and split-equally conventions all do. Where the direction itself crosses
a kink (ReLU's zeros: each tied element has its own kink), it proves nothing and is let pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .._oracles.finite_diff import Judgement
from .._result import InputReport
from .descend import judge_directions, jumps_along
from .directions import RARE_TIES, chance_ties_only, element_scales, on_device, sorted_values
from .setup import Setup
from .verdicts import relative_error

TIE_GROUPS = 16  # groups judged one by one (the largest first) when a joint direction fails
COINCIDENCES_FROM = 4096  # inputs this large with ties in under RARE_TIES of them: chance ones


@dataclass
class TieFailure:
    """A group of tied elements whose gradient, summed, disagrees with the smooth slope along them."""

    elements: np.ndarray  # flat indices
    value: float  # the tied value
    numeric: float  # d F / d t for all of them shifted by t together
    analytic: float  # the analytic gradient summed over them

    def to_dict(self, shape: tuple[int, ...]) -> dict[str, Any]:
        first = [int(v) for v in np.unravel_index(int(self.elements[0]), shape)] if shape else []
        return {
            "elements": int(self.elements.size),
            "first": first,
            "value": self.value,
            "numeric": self.numeric,
            "analytic": self.analytic,
        }


def tie_groups(values: np.ndarray, ordered: Callable[[], np.ndarray] | None = None) -> list[np.ndarray]:
    """Flat indices of each value that occurs more than once, largest groups first. Large inputs
    whose strided sample shows only chance coincidences (float32 data) are skipped, as in
    ``directions.special_elements`` (``ordered``: the values sorted, as there)."""
    flat = values.reshape(-1)
    if chance_ties_only(flat):
        return []
    ordered_flat = np.sort(flat) if ordered is None else ordered()
    if not np.any(ordered_flat[1:] == ordered_flat[:-1]):
        return []  # the usual case, told by one sort (np.unique's bookkeeping costs ten)
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    tied = np.flatnonzero(counts > 1)
    if not tied.size or (flat.size > COINCIDENCES_FROM and counts[tied].sum() < RARE_TIES * flat.size):
        return []  # chance coincidences among many float32 values, rarely in one window
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    groups = [order[starts[g] : starts[g] + counts[g]] for g in tied]
    return sorted(groups, key=lambda g: -g.size)


def judge_ties(setup: Setup, i: int) -> list[TieFailure]:
    """The groups of tied elements of input i whose summed gradient is wrong (none: all fine).

    Judged with |grad_output| where the backward gives it: a tie gradient given to each of k_w
    tied maxima of window w sums to sum_w k_w |dy_w| against the true sum_w |dy_w|, an excess
    that mixed signs could cancel; the ratio then also says which way the gradient is off."""
    groups = setup.memo(
        ("ties", i), lambda: tie_groups(setup.host_values[i], partial(sorted_values, setup, i))
    )
    if not groups:
        return []
    setup = setup.convex() or setup
    coefficients = [_coefficient(setup) for _ in groups]
    together = _direction(setup, i, groups, coefficients)
    joint = judge_directions(setup, [together], [i])
    if joint.passed.all():
        return []
    failures, intervals = [], []
    for group, c in list(zip(groups, coefficients))[:TIE_GROUPS]:
        direction = _direction(setup, i, [group], [c])
        verdict = judge_directions(setup, [direction], [i])
        intervals.append(_interval(verdict))
        if beyond_both_sides(verdict) and not jumps_along(setup, [direction], [i])[0]:
            failures.append(_failure(setup, i, group, c, verdict.numeric[0], verdict.analytic[0]))
    if len(groups) > TIE_GROUPS:  # the smaller groups moved together: one direction of their own
        rest = judge_directions(
            setup, [_direction(setup, i, groups[TIE_GROUPS:], coefficients[TIE_GROUPS:])], [i]
        )
        intervals.append(_interval(rest))
    # the joint direction is the sum of the groups' own (and of the rest's): its valid slopes are
    # the sum of their intervals, wider than its one-sided slopes where kinks of opposite
    # curvature meet (a clamp at both bounds), equal to them where all kinks bend one way
    # (max-pool)
    low, high = tuple(sum(side) for side in zip(*intervals))
    if (
        not failures
        and not joint.passed[0]
        and _outside(joint.analytic[0], low, high)
        and not jumps_along(setup, [together], [i])[0]
    ):
        elements = np.concatenate(groups)  # wrong jointly, yet no group alone is
        failures.append(TieFailure(elements, float("nan"), float(joint.numeric[0]), float(joint.analytic[0])))
    return failures


def _interval(verdict: Judgement) -> tuple[float, float]:
    """The slopes a gradient may have along the verdict's direction: between the one-sided ones
    (any value between them is a subgradient's), widened by the tolerance."""
    plus, minus, slack = verdict.one_sided[0][0], verdict.one_sided[1][0], verdict.tolerance[0]
    return float(min(plus, minus) - slack), float(max(plus, minus) + slack)


def _outside(analytic: float, low: float, high: float) -> bool:
    return not low <= analytic <= high


def beyond_both_sides(verdict: Judgement) -> bool:
    """Failed, and outside even the interval between the one-sided slopes: no kink along the
    direction explains it (where float32 noise hides a kink, the verdict alone would not say)."""
    return not verdict.passed[0] and _outside(verdict.analytic[0], *_interval(verdict))


def _coefficient(setup: Setup) -> float:
    """A random sign and magnitude in [0.5, 1.5) per group: groups in one window move apart."""
    u = float(setup.rng.uniform(-1.0, 1.0))
    return float(np.copysign(0.5 + abs(u), u))


def _direction(setup: Setup, i: int, groups: list[np.ndarray], coefficients: list[float]) -> dict[int, Any]:
    """Each group shifted as a whole: equal values have equal element steps."""
    flat = np.zeros(setup.host_values[i].size)
    for group, c in zip(groups, coefficients):
        flat[group] = c
    flat *= element_scales(setup, i)
    return {i: on_device(setup, i, flat)}


def _failure(
    setup: Setup, i: int, group: np.ndarray, c: float, numeric: float, analytic: float
) -> TieFailure:
    """Slopes per unit shift of every tied element (the direction moved each by c * step)."""
    shift = c * float(element_scales(setup, i)[group[0]])
    value = float(setup.host_values[i].reshape(-1)[group[0]])
    return TieFailure(group, value, float(numeric) / shift, float(analytic) / shift)


def amend(setup: Setup, report: InputReport) -> None:
    """Fail ``report`` where a group of tied elements fails jointly; the evidence goes with it."""
    failures = judge_ties(setup, report.index)
    if not failures:
        return
    shape = setup.host_values[report.index].shape
    failing = report.failing_map if report.failing_map is not None else np.zeros(shape, dtype=bool)
    failing = failing.copy()
    for failure in failures:
        failing.reshape(-1)[failure.elements] = True
    report.failing_map = failing
    report.evidence["ties_alone"] = report.passed  # every element passed on its own
    report.passed = False
    report.failing = int(failing.sum())
    report.evidence["ties"] = [f.to_dict(shape) for f in failures]
    worst = max(failures, key=lambda f: abs(f.numeric - f.analytic))
    error = abs(worst.numeric - worst.analytic)
    report.max_abs_err = max(report.max_abs_err, error)
    report.max_rel_err = max(report.max_rel_err, relative_error(np.array([error]), np.array([worst.numeric])))
    if report.worst_index is None or report.failing == sum(f.elements.size for f in failures):
        report.numeric, report.analytic = worst.numeric, worst.analytic
        report.worst_index = tuple(int(v) for v in np.unravel_index(int(worst.elements[0]), shape))
