"""Projection mode: one balanced random direction across all inputs, a handful of forward
passes whatever the size. Only when it fails does it spend more, first per input, then
element-wise on the worst block, to say which input and which element is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .._ground.backends import to_numpy
from .._oracles.finite_diff import Judgement, direction_differences, direction_pair, judge, merge, subset
from .._oracles.taylor import taylor_test
from .._result import InputReport
from .directions import (
    far_below_scale,
    joint_direction,
    masked_direction,
    on_device,
    own_scale_direction,
    sorted_values,
    special_elements,
)
from .elementwise import BORDERLINE, REFINEMENTS, adopt, judge_elements, jumped
from .setup import Setup
from .tolerances import analytic_slack, input_scale
from .verdicts import attach_maps, fill_worst, input_report, ratio

CONVERGING = 2.0  # a projection refines further while its error shrinks 2x per 8x smaller step
SPREAD_LEAN = 4.0  # a pass whose spread allowance is over 4x its noise and slack gets confirmed
DEEPEST = 8.0**5  # ... down to t/32768
STABLE = 0.25  # an error moving under 25% while the step shrinks 8x is the gradient's own
LOCALIZE_ELEMENTS = 64  # element-wise budget when localizing a failure in a large input
SPECIAL_ELEMENTS = 128  # exact zeros and ties checked one by one in projection mode
SPECIAL_DIRECT = 8  # ... straight away up to this many, else after a direction over them fails


@dataclass
class JointVerdict:
    """Every input at once, along ``directions`` joint directions: enough to pass them all; a
    failure is then told apart input by input (``projection_reports``)."""

    verdict: Judgement
    specials: dict[int, np.ndarray]
    directions: list[dict[int, Any]]

    @property
    def passed(self) -> bool:
        return bool(self.verdict.passed.all())


def joint_verdict(setup: Setup, inputs: list[int], directions: int) -> JointVerdict:
    specials = {i: left_out(setup, i, exhaustive=False) for i in inputs}
    joint = [joint_direction(setup, inputs, specials) for _ in range(directions)]
    verdict = judge_directions(setup, joint, inputs)
    if not verdict.passed.all() and verdict.nonsmooth.any():
        # a kink at the base point: look for every tie, not just the sampled ones, and retry
        specials = {i: left_out(setup, i, exhaustive=True) for i in inputs}
        joint = [joint_direction(setup, inputs, specials) for _ in range(directions)]
        verdict = judge_directions(setup, joint, inputs)
    return JointVerdict(verdict, specials, joint)


def projection_reports(
    setup: Setup, inputs: list[int], directions: int, joint: JointVerdict | None = None
) -> list[InputReport]:
    """A report per input: the joint verdict's pass, or each input judged alone, a failing one
    localized on its worst block (``joint``: the joint verdict already reached, if any)."""
    joint = joint if joint is not None else joint_verdict(setup, inputs, directions)
    if joint.passed:
        return [_projection_pass(setup, i, joint.specials[i], joint.verdict) for i in inputs]
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
        near_zero = setup.fractions[i] * input_scale(values) / DEEPEST
        ordered = partial(sorted_values, setup, i)  # sorted once, for the tie search too
        return special_elements(values, exhaustive=exhaustive, near_zero=near_zero, ordered=ordered)

    return setup.memo(("specials", i, exhaustive), find)


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
        _discrepancy(verdict), _ratio(verdict), [np.full(len(directions), np.nan), _raw_error(verdict)]
    )
    pending = ~verdict.passed | (_unsettled(verdict) & (not quick))
    for depth, scale in enumerate(REFINEMENTS if quick else _direction_refinements(), 1):
        if not pending.any():
            break
        retry = at(scale, [d for d, f in zip(directions, pending) if f])
        verdict = _refine(verdict, pending, retry, trail.size)
        converging = _discrepancy(retry) <= trail.size[pending] / CONVERGING
        trail.size[pending], trail.ratio[pending] = _discrepancy(retry), _ratio(retry)
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


def _ratio(verdict: Judgement) -> np.ndarray:
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


def _projection_pass(setup: Setup, i: int, special: np.ndarray, verdict: Judgement) -> InputReport:
    shape = setup.host_values[i].shape
    report = InputReport(
        setup.names[i], i, shape, "", "projection", True, checked=math.prod(shape) - special.size
    )
    fill_worst(report, verdict, None, shape)
    report.evidence["kink_at_base"] = bool(verdict.kink.any())  # passed only as a kink crossed
    if special.size:
        _check_specials(setup, i, special, report)
    return report


def _check_specials(setup: Setup, i: int, special: np.ndarray, report: InputReport) -> None:
    """Zeros and ties may sit on kinks, so projections leave them out and they are probed here:
    a few one by one; many (float32 data is full of harmless ties: ~n^2 / 2^25 among n normal
    values) first along one direction over them alone, a handful of calls where a layer without
    kinks there needs no more, and one by one only if that direction fails."""
    together = _specials_together(setup, i, special) if special.size > SPECIAL_DIRECT else None
    if together is not None and together.passed.all():
        report.checked += special.size
        # accepted between the one-sided slopes of their direction: they sit on kinks
        report.kinks += special.size if together.kink.all() else 0
        report.note = f"{special.size} zeros/ties checked along a direction of their own"
        return
    chosen = special
    if special.size > SPECIAL_ELEMENTS:
        chosen = np.sort(setup.rng.choice(special, SPECIAL_ELEMENTS, replace=False))
        report.note = f"{SPECIAL_ELEMENTS} of {special.size} exact zeros/ties checked one by one"
    verdict = judge_elements(setup, i, chosen)
    report.checked += chosen.size
    report.kinks += int(verdict.kink.sum())
    if not verdict.passed.all():
        report.passed = False
        report.failing = int((~verdict.passed).sum())
        fill_worst(report, verdict, chosen, setup.host_values[i].shape)
        attach_maps(report, setup.host_gradients[i], chosen, verdict)


def _specials_together(setup: Setup, i: int, special: np.ndarray) -> Judgement:
    mask = np.zeros(setup.host_values[i].size)
    mask[special] = 1.0
    direction = masked_direction(setup, i, mask)
    return judge_directions(setup, [direction], [i])


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
    even at the deepest step. The same directions without those elements must pass (no fresh
    draw: a fresh one could cancel a wrong slope against a kink), and the small elements pass
    along directions of their own, each stepped by the usual fraction of its own magnitude;
    either part earns analytic slack from its own gradients only."""
    small = far_below_scale(setup, i, special)
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
    if not own.passed.all():
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
    return seek_kinks and bool(verdict.nonsmooth[0]), float(_ratio(verdict)[0])
