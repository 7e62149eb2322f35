"""Kinks shared by several elements, judged together: the gradients at kinks must be one
subgradient, not a box of per-element intervals.

Each element on a kink accepts anything between its own one-sided slopes. Where several kinks
come from one term (``|p - t|`` at ``p == t``, ``max(a, b)`` at ``a == b``, a hinge loss's zero
margin ``s_j - s_y + 1 == 0``), the term is smooth along the shift of all of them by one amount:
``|p - t|`` does not change, ``max(a, b)`` moves with it, the margin stays 0. Along that
direction the analytic gradient, summed, must match the slope; per-element conventions that do
not agree with each other (``dp = where(d >= 0, 1, -1)`` with ``dt = -sign(d)``) do not. This
holds for convex kinks (and concave ones), so it is asked only where every kink element bends
the same way under |grad_output|; a direction along which the layer has a kink proves
nothing where the analytic slope lies between its one-sided slopes. Zeros and ties
within one input are ``ties``'s; these are the kinks a passing projection crossed at the base
point, or that element-wise probing accepted.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .._oracles.finite_diff import Judgement
from .._result import InputReport
from .descend import judge_directions, judged_at, jumps_along
from .directions import element_scales, on_device
from .elementwise import judge_elements
from .projection import left_out
from .setup import Setup
from .ties import beyond_both_sides

SHARED_LIMIT = 512  # elements probed one by one to find the kinks a projection crossed
KINK_GAP = 4.0  # one-sided slopes this many tolerances apart: a kink


def amend(setup: Setup, reports: list[InputReport]) -> None:
    """Fail the passing reports whose kink elements, shifted together, disagree with the slope.
    The shift is tried first (three or four calls at first look), and only
    a failure pays for the evidence that it means something: every kink bending one way, no jump
    along the shift."""
    if not reports or not all(r.passed for r in reports):
        return
    candidates, probed = kink_candidates(setup, reports)
    if not candidates:
        return
    twin = setup.convex() or setup
    bends: dict[int, np.ndarray] = {}
    if probed:  # the kinks a projection crossed: found element by element first
        candidates, bends = kinks_among(twin, candidates)
        if sum(k.size for k in candidates.values()) < 2:
            return
    step, direction = _shift(twin, candidates)
    inputs = sorted(candidates)
    first = judged_at(twin, 1.0, [direction], inputs=inputs)
    if not beyond_both_sides(first):
        return  # passed at first look, or between the one-sided slopes of a kink along the shift
    verdict = judge_directions(twin, [direction], inputs, quick=True, first=first)
    if not beyond_both_sides(verdict):
        return
    if not probed:
        _, bends = kinks_among(twin, candidates)
    signs = np.concatenate(list(bends.values())) if bends else np.zeros(0)
    if signs.size < 2 or not (np.all(signs > 0) or np.all(signs < 0)):
        return  # kinks of both curvatures: their one-sided slopes bound nothing together
    if jumps_along(twin, [direction], inputs)[0]:
        return  # across a jump: nothing to judge
    # slopes per unit shift of every kink element (the direction moved each by ``step``)
    numeric, analytic = float(verdict.numeric[0]) / step, float(verdict.analytic[0]) / step
    fail_together(setup, reports, candidates, numeric, analytic)


def kinks_among(
    setup: Setup, candidates: dict[int, np.ndarray]
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per input, the candidates on a kink (one-sided slopes apart, whether the gradient sits
    between them or on their mean: sign(0) = 0 passes as if smooth) and the way each bends."""
    kinks, bends = {}, {}
    for i, index in candidates.items():
        # memoized: the kinks shared with a parameter (``partner_kinks``) ask for them too
        key = ("kinks_among", i, index.tobytes())
        verdict: Judgement = setup.memo(key, partial(judge_elements, setup, i, index))
        plus, minus = verdict.one_sided
        on_kink = verdict.passed & (np.abs(plus - minus) > KINK_GAP * verdict.tolerance)
        if on_kink.any():
            kinks[i] = index[on_kink]
            bends[i] = np.sign(plus - minus)[on_kink]
    return kinks, bends


def kink_candidates(setup: Setup, reports: list[InputReport]) -> tuple[dict[int, np.ndarray], bool]:
    """Per input, the flat elements to shift, once some input shows kinks: its zeros and ties
    (a kink's partner may pass as smooth: -sign(0) = 0 is the mean of its one-sided slopes),
    with the kinks element-wise probing accepted; or, where a passing projection crossed a kink
    at the base point, every element, to be probed for kinks first (then True). SHARED_LIMIT
    elements in all, else none: probing them one by one would cost more than the check."""
    total = sum(setup.host_values[r.index].size for r in reports)
    crossed = any(r.evidence.get("kink_at_base") for r in reports) and total <= SHARED_LIMIT
    if not crossed and not any(r.kinks for r in reports):
        return {}, False
    found = {}
    for r in reports:
        if crossed:
            found[r.index] = np.arange(setup.host_values[r.index].size)
            continue
        index = left_out(setup, r.index, exhaustive=True)
        if r.kink_map is not None:
            index = np.union1d(index, np.flatnonzero(r.kink_map))
        if index.size:
            found[r.index] = index
    if sum(index.size for index in found.values()) > SHARED_LIMIT:
        return {}, False
    return found, crossed


def _shift(setup: Setup, kinks: dict[int, np.ndarray]) -> tuple[float, dict[int, Any]]:
    """Every kink element moved by one and the same amount (the smallest of their steps): the
    amount, and the direction."""
    step = min(float(element_scales(setup, i)[index].min()) for i, index in kinks.items())
    direction = {}
    for i, index in kinks.items():
        flat = np.zeros(setup.host_values[i].size)
        flat[index] = step
        direction[i] = on_device(setup, i, flat)
    return step, direction


def fail_together(
    setup: Setup, reports: list[InputReport], kinks: dict[int, np.ndarray], numeric: float, analytic: float
) -> None:
    count = sum(k.size for k in kinks.values())
    names = ", ".join(setup.names[i] for i in sorted(kinks))
    for report in reports:
        index = kinks.get(report.index)
        if index is None:
            continue
        shape = setup.host_values[report.index].shape
        failing = np.zeros(shape, dtype=bool)
        failing.reshape(-1)[index] = True
        report.passed = False
        report.failing = int(index.size)
        report.failing_map = failing
        report.worst_index = tuple(int(v) for v in np.unravel_index(int(index[0]), shape))
        report.numeric, report.analytic = numeric, analytic
        report.max_abs_err = max(report.max_abs_err, abs(numeric - analytic))
        report.evidence["shared_kinks"] = {
            "elements": count,
            "inputs": names,
            "numeric": numeric,
            "analytic": analytic,
        }
