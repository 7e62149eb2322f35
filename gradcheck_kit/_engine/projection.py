"""Projection mode: one balanced random direction across all inputs, a handful of forward
passes whatever the size. Only when it fails does it spend more, first per input, then
element-wise on the worst block, to say which input and which element is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .._oracles.finite_diff import Judgement
from .._result import InputReport
from .descend import DEEPEST, judge_directions, ratio_of, sharp_pass
from .directions import (
    far_below_scale,
    joint_direction,
    masked_direction,
    on_device,
    own_scale_direction,
    sorted_values,
    special_elements,
)
from .elementwise import judge_elements
from .setup import Setup
from .specials import check_specials, near_zero
from .verdicts import fill_worst, input_report

LOCALIZE_ELEMENTS = 64  # element-wise budget when localizing a failure in a large input


@dataclass
class JointVerdict:
    """Every input at once, along ``directions`` joint directions: enough to pass them all; a
    failure is then told apart input by input (``projection_reports``)."""

    verdict: Judgement
    specials: dict[int, np.ndarray]
    directions: list[dict[int, Any]]
    drowned: set[int]  # inputs whose share of the directions was too small to see their errors

    @property
    def passed(self) -> bool:
        return bool(self.verdict.passed.all())


def joint_verdict(setup: Setup, inputs: list[int], directions: int) -> JointVerdict:
    specials = {i: left_out(setup, i, exhaustive=False) for i in inputs}
    drowned: set[int] = set()
    joint = [joint_direction(setup, inputs, specials, drowned) for _ in range(directions)]
    verdict = judge_directions(setup, joint, inputs)
    if not verdict.passed.all() and verdict.nonsmooth.any():
        # a kink at the base point: look for every tie, not just the sampled ones, and retry
        specials = {i: left_out(setup, i, exhaustive=True) for i in inputs}
        drowned.clear()
        joint = [joint_direction(setup, inputs, specials, drowned) for _ in range(directions)]
        verdict = judge_directions(setup, joint, inputs)
    return JointVerdict(verdict, specials, joint, drowned)


def projection_reports(
    setup: Setup, inputs: list[int], directions: int, joint: JointVerdict | None = None
) -> list[InputReport]:
    """A report per input: the joint verdict's pass, or each input judged alone, a failing one
    localized on its worst block (``joint``: the joint verdict already reached, if any)."""
    joint = joint if joint is not None else joint_verdict(setup, inputs, directions)
    if joint.passed:  # it vouches for every input but those it could not see
        return [
            _per_input(setup, i, joint.specials[i], directions)
            if i in joint.drowned
            else _projection_pass(setup, i, joint.specials[i], joint.verdict)
            for i in inputs
        ]
    specials = {i: left_out(setup, i, exhaustive=True) for i in inputs}
    if len(inputs) == 1 and np.array_equal(specials[inputs[0]], joint.specials[inputs[0]]):
        # the joint directions were this input's own: their failure stands (fresh directions
        # could pass by a cancellation, a kink at the base point against the error)
        judged = (joint.directions, joint.verdict)
        return [_per_input(setup, inputs[0], specials[inputs[0]], directions, judged=judged)]
    return [_per_input(setup, i, specials[i], directions) for i in inputs]


def left_out(setup: Setup, i: int, *, exhaustive: bool) -> np.ndarray:
    """Elements a projection must leave out: ties, and values so close to 0 that even the
    smallest step we take (t / DEEPEST) crosses it: at a kink there for every step we have."""
    values = setup.host_values[i]

    def find() -> np.ndarray:
        ordered = partial(sorted_values, setup, i)  # sorted once, for the tie search too
        return special_elements(values, exhaustive=exhaustive, near_zero=near_zero(setup, i), ordered=ordered)

    return setup.memo(("specials", i, exhaustive), find)


def _projection_pass(setup: Setup, i: int, special: np.ndarray, verdict: Judgement) -> InputReport:
    shape = setup.host_values[i].shape
    report = InputReport(
        setup.names[i], i, shape, "", "projection", True, checked=math.prod(shape) - special.size
    )
    fill_worst(report, verdict, None, shape)
    report.evidence["kink_at_base"] = bool(verdict.kink.any())  # passed only as a kink crossed
    if special.size:
        check_specials(setup, i, special, report)
    return report


KINK_RETRIES = 3  # projections judged again without the kinks a localization found


def _per_input(
    setup: Setup,
    i: int,
    special: np.ndarray,
    directions: int,
    retries: int = KINK_RETRIES,
    judged: tuple[list[dict[int, Any]], Judgement] | None = None,
) -> InputReport:
    """Input i judged alone along ``directions`` directions of its own (``judged``: directions
    already judged, with their verdict), a failure localized; kinks a localization finds are
    left out and the input judged again, up to ``retries`` times."""
    if judged is None:
        own = [joint_direction(setup, [i], {i: special}) for _ in range(directions)]
        judged = (own, judge_directions(setup, own, [i]))
    verdict = judged[1]
    if verdict.passed.all():
        return _projection_pass(setup, i, special, verdict)
    split = _judged_by_scale(setup, i, special, judged[0])
    if isinstance(split, InputReport):
        return split
    report, kinked = localize(setup, i, verdict if split is None else split.verdict, part=split)
    if kinked is not None and not kinked.size and retries:
        # the worst block is right and holds no kink: a kink at the base point passes its own
        # half of the direction (its error counts as 0), so the halves are ranked again
        # nonsmooth first, down to the block holding it
        kinked = localize(setup, i, verdict, seek_kinks=True)[1]
    if kinked is None or not kinked.size or retries == 0 or np.isin(kinked, special).all():
        return report
    # the worst block held kinks and nothing wrong: a kink off zero and off any tie (relu(x - c)
    # at x == c) that the direction crossed; judged again without those elements
    return _per_input(setup, i, np.union1d(special, kinked), directions, retries - 1)


@dataclass
class _Part:
    """The elements of an input whose directions failed when judged apart by scale: those at
    the input's scale, or (``own_scale``) those far below it, stepped by their own magnitude."""

    mask: np.ndarray  # flat, bool
    own_scale: bool
    verdict: Judgement

    def direction(self, setup: Setup, i: int, where: np.ndarray) -> dict[int, Any]:
        """A direction over the part's elements within ``where`` (flat, bool)."""
        inside = where & self.mask
        if self.own_scale:
            return own_scale_direction(setup, i, np.flatnonzero(inside))
        return masked_direction(setup, i, inside.astype(np.float64))


def _judged_by_scale(
    setup: Setup, i: int, special: np.ndarray, failed: list[dict[int, Any]]
) -> InputReport | _Part | None:
    """A pass where failed directions owe their failure to elements far below the input's
    scale; else the part that failed (None: no such elements). Steps follow the input's scale
    (zeros need one), so a 1e-6 row beside a 1e4 one is moved across its whole normalization
    even at the deepest step (t / 32768) a direction takes. The same directions without those
    elements must pass (no fresh draw: a fresh one could cancel a wrong slope against a kink),
    and the small elements pass along directions of their own, each stepped by the usual
    fraction of its own magnitude, sharply (``sharp_pass``); either part earns analytic slack
    from its own gradients only."""
    small = far_below_scale(setup, i, special, below=DEEPEST)  # the deepest step directions take
    if not small.size:
        return None
    mine = np.zeros(setup.host_values[i].size, dtype=bool)
    mine[small] = True
    rest = ~mine
    rest[special] = False
    verdict = None
    if rest.any():
        keep = on_device(setup, i, rest.astype(np.float64))
        masked = [{i: d[i] * keep} for d in failed]
        verdict = judge_directions(setup, masked, [i], support_slack=True)
        if not verdict.passed.all():
            return _Part(rest, False, verdict)
    directions = [own_scale_direction(setup, i, small) for _ in failed]
    own = judge_directions(setup, directions, [i], support_slack=True)
    if not sharp_pass(own):
        return _Part(mine, True, own)
    report = _projection_pass(setup, i, special, verdict if verdict is not None else own)
    note = f"{small.size} elements far below the input's scale judged at their own"
    report.note = f"{report.note}; {note}" if report.note else note
    return report


def localize(
    setup: Setup, i: int, projection: Judgement, *, seek_kinks: bool = False, part: _Part | None = None
) -> tuple[InputReport, np.ndarray | None]:
    """Confirm a failed projection element-wise on the worst block of input i (``seek_kinks``:
    a nonsmooth half before a worse one; ``part``: blocks ranked along directions over that
    part alone); with the report, the kinks (flat indices) of a block that is otherwise right,
    which may explain the failure (None where the block is wrong)."""
    shape = setup.host_values[i].shape
    block = _worst_block(setup, i, shape, seek_kinks, part)
    inside = np.zeros(shape, dtype=bool)
    inside[tuple(block)] = True
    index = np.flatnonzero(inside)
    verdict = judge_elements(setup, i, index)
    report = input_report(setup.names[i], i, "projection", index, verdict, setup.host_gradients[i])
    report.block = tuple(block)
    kinked = index[verdict.kink] if report.passed else None
    if report.passed:  # the block looked fine: the projection's evidence still stands
        report.passed = False
        fill_worst(report, projection, None, shape)
    report.evidence["projection_error"] = float(projection.error.max())
    report.evidence["projection_tolerance"] = float(projection.tolerance.max())
    return report, kinked


def block_shape(block: list[slice]) -> tuple[int, ...]:
    return tuple(s.stop - s.start for s in block)


def _worst_block(
    setup: Setup, i: int, shape: tuple[int, ...], seek_kinks: bool = False, part: _Part | None = None
) -> list[slice]:
    """Halve the largest axis, keeping the half whose projection error is larger (``seek_kinks``:
    a half whose direction is nonsmooth first; ``part``: along directions over it alone)."""
    block = [slice(0, n) for n in shape]
    while math.prod(block_shape(block)) > LOCALIZE_ELEMENTS:
        axis = int(np.argmax(block_shape(block)))
        s = block[axis]
        mid = (s.start + s.stop) // 2
        halves = [slice(s.start, mid), slice(mid, s.stop)]
        scores = [
            _block_score(setup, i, [*block[:axis], h, *block[axis + 1 :]], seek_kinks, part) for h in halves
        ]
        block[axis] = halves[max(range(2), key=lambda k: scores[k])]
    return block


def _block_score(
    setup: Setup, i: int, block: list[slice], seek_kinks: bool, part: _Part | None
) -> tuple[bool, float]:
    """(nonsmooth, where kinks are sought; error / tolerance) of the block's own direction."""
    mask = np.zeros(setup.host_values[i].shape, dtype=bool)
    mask[tuple(block)] = True
    if part is not None and not (part.mask & mask.reshape(-1)).any():
        return False, -np.inf  # none of the failing part in this half
    if part is None:
        direction = masked_direction(setup, i, mask.reshape(-1).astype(np.float64))
    else:
        direction = part.direction(setup, i, mask.reshape(-1))
    verdict = judge_directions(setup, [direction], [i], quick=True, support_slack=part is not None)
    return seek_kinks and bool(verdict.nonsmooth[0]), float(ratio_of(verdict)[0])
