"""Kinks shared with a broadcast parameter (a bias per column, a learned threshold), judged
along directions that move a parameter's element together with the kinks it meets.

``relu(x + b)`` at ``x_ij + b_j == 0``, ``clip(x, 0, alpha)`` at ``x == alpha``: the kink is in a
term of an element and a parameter's element. Moving both so that the term stays put (x + h
with b - h; x + h with alpha + h), the layer is smooth and its slope must be the analytic one,
though each of dx and db alone may sit between its own one-sided slopes (dx's mask ``z > 0``
with db's ``z >= 0``, or an alpha gradient averaged instead of summed). Which sign keeps the
term put is not known: both are tried, and only directions along which the layer is smooth
are judged. The elements a parameter's element meets follow NumPy broadcasting; a direction
built on a wrong guess of them is merely not smooth, or smooth and then right for a right
gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._oracles.finite_diff import subset
from .._result import InputReport
from .descend import judge_directions, judged_at, jumps_along
from .directions import element_scales, on_device
from .setup import Setup
from .shared_kinks import fail_together, kink_candidates, kinks_among
from .ties import beyond_both_sides

PARTNER_LIMIT = 16  # elements of a parameter broadcast against a kinked input
PARTNERS = 8  # partner elements tried
GROUPS = 2  # per partner element, the largest groups of equal kink values tried


def amend(setup: Setup, reports: list[InputReport]) -> None:
    """Fail the passing reports of an input and a parameter whose kinks, moved together where
    the layer is smooth, disagree with the slope."""
    if len(reports) < 2 or not all(r.passed for r in reports):
        return
    partners = [r.index for r in reports if setup.host_values[r.index].size <= PARTNER_LIMIT]
    if not partners:
        return
    candidates, _ = kink_candidates(setup, reports)
    if not candidates:
        return
    twin = setup.convex() or setup
    kinks, _ = kinks_among(twin, candidates)
    for big, kinked in kinks.items():
        for p in partners:
            if p == big:
                continue
            failure = _judge_partner(twin, big, p, kinked)
            if failure is not None:
                fail_together(setup, reports, *failure)
                return


def _judge_partner(
    setup: Setup, big: int, p: int, kinked: np.ndarray
) -> tuple[dict[int, np.ndarray], float, float] | None:
    mapped = _broadcast_index(setup.host_values[big].shape, setup.host_values[p].shape, kinked)
    if mapped is None:
        return None
    pairs = _pairs(setup, big, p, kinked, mapped)
    if not pairs:
        return None
    directions = [direction for *_, direction in pairs]
    # every side evaluated: a cubic through a kink at the point would hide it (a direction
    # moving the kinks with the wrong sign would pass for smooth)
    first = judged_at(setup, 1.0, directions, inputs=[big, p], interpolated=False)
    for k in np.flatnonzero(~first.passed & ~first.nonsmooth):
        group, element, step, direction = pairs[k]
        one = np.zeros(len(pairs), dtype=bool)
        one[k] = True
        verdict = judge_directions(setup, [direction], [big, p], quick=True, first=subset(first, one))
        if verdict.nonsmooth[0] or not beyond_both_sides(verdict):
            continue
        if jumps_along(setup, [direction], [big, p])[0]:
            continue
        moved = {big: group, p: np.array([element])}
        return moved, float(verdict.numeric[0]) / step, float(verdict.analytic[0]) / step
    return None


def _broadcast_index(shape: tuple[int, ...], partner: tuple[int, ...], flat: np.ndarray) -> np.ndarray | None:
    """The partner's flat element each of ``flat`` (elements of an array of ``shape``) meets
    under NumPy broadcasting; None where ``partner`` does not broadcast against ``shape``."""
    if len(partner) > len(shape):
        return None
    trailing = shape[len(shape) - len(partner) :]
    if any(q not in (1, s) for q, s in zip(partner, trailing)):
        return None
    if not partner:
        return np.zeros(flat.size, dtype=np.int64)
    coordinates = np.unravel_index(flat, shape)[len(shape) - len(partner) :]
    clipped = [c if q > 1 else np.zeros_like(c) for c, q in zip(coordinates, partner)]
    return np.ravel_multi_index(clipped, partner)


def _pairs(
    setup: Setup, big: int, p: int, kinked: np.ndarray, mapped: np.ndarray
) -> list[tuple[np.ndarray, int, float, dict[int, Any]]]:
    """(kink group, partner element, step, direction) to try: per partner element (the PARTNERS
    meeting most kinks), its kinks of equal value (the GROUPS largest), with either sign; the
    group and the element move by one step, the smallest of their own."""
    values = setup.host_values[big].reshape(-1)
    scales, partner_scales = element_scales(setup, big), element_scales(setup, p)
    elements, counts = np.unique(mapped, return_counts=True)
    pairs = []
    for element in elements[np.argsort(-counts, kind="stable")][:PARTNERS]:
        met = kinked[mapped == element]
        levels, sizes = np.unique(values[met], return_counts=True)
        for level in levels[np.argsort(-sizes, kind="stable")][:GROUPS]:
            group = met[values[met] == level]
            step = min(float(scales[group].min()), float(partner_scales[element]))
            for sign in (1.0, -1.0):
                direction = _direction(setup, big, group, p, int(element), sign * step, step)
                pairs.append((group, int(element), step, direction))
    return pairs


def _direction(
    setup: Setup, big: int, group: np.ndarray, p: int, element: int, partner_step: float, step: float
) -> dict[int, Any]:
    """The group moved by ``step``, the partner element by ``partner_step``."""
    moved = np.zeros(setup.host_values[big].size)
    moved[group] = step
    partner = np.zeros(setup.host_values[p].size)
    partner[element] = partner_step
    return {big: on_device(setup, big, moved), p: on_device(setup, p, partner)}
