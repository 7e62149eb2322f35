"""Zeros and ties in projection mode: they may sit on kinks, so projections leave them out
and they are probed apart, first along a direction of their own, one by one where it fails.
"""

from __future__ import annotations

import numpy as np

from .._oracles.finite_diff import Judgement
from .._result import InputReport
from .descend import DEEPEST, judge_directions, sharp_pass
from .directions import masked_direction, own_scale_direction, sorted_values
from .elementwise import judge_elements
from .setup import Setup
from .tolerances import input_scale
from .verdicts import attach_maps, fill_worst

SPECIAL_ELEMENTS = 128  # exact zeros and ties checked one by one in projection mode
SPECIAL_DIRECT = 8  # ... straight away up to this many, else after a direction over them fails


def check_specials(setup: Setup, i: int, special: np.ndarray, report: InputReport) -> None:
    """Zeros and ties may sit on kinks, so projections leave them out and they are probed here:
    a few one by one; many (float32 data is full of harmless ties: ~n^2 / 2^25 among n normal
    values) first along one direction over them alone, a handful of calls where a layer without
    kinks there needs no more, and one by one only if that direction fails."""
    together = _specials_together(setup, i, special) if special.size > SPECIAL_DIRECT else None
    if together is not None and not together.passed.all():
        rest = _apart_from_tiny(setup, i, special)
        if rest.size < special.size:  # the tiny ones passed at their own scale: the rest anew
            report.checked += special.size - rest.size
            special = rest
            together = _specials_together(setup, i, special) if special.size > SPECIAL_DIRECT else None
    if together is not None and together.passed.all():
        report.checked += special.size
        # accepted between the one-sided slopes of their direction: they sit on kinks
        report.kinks += special.size if together.kink.all() else 0
        report.note = f"{special.size} zeros/ties checked along a direction of their own"
        return
    if not special.size:
        return
    chosen = special if together is None else _narrowed(setup, i, special)
    if chosen.size > SPECIAL_ELEMENTS:
        chosen = np.sort(setup.rng.choice(chosen, SPECIAL_ELEMENTS, replace=False))
        report.note = f"{SPECIAL_ELEMENTS} of {special.size} exact zeros/ties checked one by one"
    verdict = judge_elements(setup, i, chosen)
    report.checked += chosen.size
    report.kinks += int(verdict.kink.sum())
    if not verdict.passed.all():
        report.passed = False
        report.failing = int((~verdict.passed).sum())
        fill_worst(report, verdict, chosen, setup.host_values[i].shape)
        attach_maps(report, setup.host_gradients[i], chosen, verdict)


def _apart_from_tiny(setup: Setup, i: int, special: np.ndarray) -> np.ndarray:
    """The zeros/ties left once the tiny ones, not 0 and tied to nothing, pass along a direction
    of their own, each stepped by its own magnitude: "near zero" is relative to the input's
    scale, and a 1e-6 row beside a 1e4 one is all near zero, its step far larger than itself
    (all of them, where that direction fails). Ties stay: a step of each one's own size moves
    tied values apart, across the kink they may share."""
    tiny = _tiny(setup, i)[special]
    if not tiny.any():
        return special
    return special[~tiny] if _own_scale_pass(setup, i, special[tiny]) else special


def near_zero(setup: Setup, i: int) -> float:
    """Input i's values at most this far from 0 are crossed by even the smallest step a
    projection takes (t / DEEPEST)."""
    return setup.fractions[i] * input_scale(setup.host_values[i]) / DEEPEST


def _tiny(setup: Setup, i: int) -> np.ndarray:
    """Which of input i's elements (flat) are near zero only relative to the input's scale: not
    0, tied to nothing (computed once per check)."""

    def find() -> np.ndarray:
        flat = setup.host_values[i].reshape(-1)
        ordered = sorted_values(setup, i)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        untied = ~np.isin(flat, repeated)
        return (flat != 0) & (np.abs(flat) <= near_zero(setup, i)) & untied

    return setup.memo(("tiny", i), find)


def _own_scale_pass(setup: Setup, i: int, index: np.ndarray) -> bool:
    """Elements ``index`` pass, sharply, along a direction stepped by each one's own magnitude."""
    direction = own_scale_direction(setup, i, index)
    return sharp_pass(judge_directions(setup, [direction], [i], support_slack=True))


def _narrowed(setup: Setup, i: int, special: np.ndarray) -> np.ndarray:
    """The zeros/ties to probe one by one once a direction over all of them failed: halves whose
    own direction fails too, down to SPECIAL_ELEMENTS (a sample of all of them would miss one
    wrong element among many); all of them where neither half fails alone."""
    if special.size <= SPECIAL_ELEMENTS:
        return special
    halves = np.array_split(special, 2)
    failing = [h for h in halves if not _settled(setup, i, h)]
    if not failing:
        return special
    return np.concatenate([_narrowed(setup, i, h) for h in failing])


def _settled(setup: Setup, i: int, group: np.ndarray) -> bool:
    """Zeros/ties that pass along a direction over them, or, all of them tiny (``_tiny``), along
    one stepped by each one's own magnitude."""
    if _specials_together(setup, i, group).passed.all():
        return True
    return bool(_tiny(setup, i)[group].all()) and _own_scale_pass(setup, i, group)


def _specials_together(setup: Setup, i: int, special: np.ndarray) -> Judgement:
    mask = np.zeros(setup.host_values[i].size)
    mask[special] = 1.0
    direction = masked_direction(setup, i, mask)
    return judge_directions(setup, [direction], [i])
