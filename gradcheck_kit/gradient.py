"""The gradient check proper: element-wise on small problems, random projections on large ones.

Element-wise mode probes every element of every differentiable input and so yields a full
error map. Projection mode probes one balanced random direction across all inputs (a handful
of forward passes whatever the size); only when it fails does it spend more, first per input,
then element-wise on the worst block, to say which input and which element is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends import Backend
from .oracles.finite_diff import (
    Judgement,
    Objective,
    direction_differences,
    direction_pair,
    element_differences,
    judge,
    merge,
    subset,
)
from .oracles.taylor import taylor_test
from .result import InputReport
from .tolerances import analytic_slack, element_steps

REFINEMENTS = (8.0, 64.0)  # retry failing probes at t/8 and t/64: kinks and curvature fade
BORDERLINE = 10.0  # a failure within 10x its tolerance earns a Taylor second opinion
LOCALIZE_ELEMENTS = 64  # element-wise budget when localizing a failure in a large input
SPECIAL_ELEMENTS = 128  # exact zeros and ties checked one by one in projection mode


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
        verdict = _adopt(verdict, failing, retry)
    return _convex_retry(setup, i, flat_index, verdict)


def _convex_retry(setup: Setup, i: int, flat_index: np.ndarray, verdict: Judgement) -> Judgement:
    """Kinks shared by several max-type terms (a tie in overlapping pooling windows) with
    grad_output of mixed signs make F neither convex nor concave, and then the one-sided slopes
    of one coordinate do not bound every valid subgradient. With |grad_output| such an F is
    convex, where they do: failing kinks get a second look under |grad_output|."""
    suspects = ~verdict.passed & verdict.nonsmooth
    if not suspects.any() or setup.convex is None:
        return verdict
    if setup._convex_setup is None:
        setup._convex_setup = setup.convex() or False
    convex = setup._convex_setup
    if not convex:
        return verdict
    convex.convex = None
    retry = judge_elements(convex, i, flat_index[suspects])
    accepted = retry.passed & retry.kink
    verdict.passed[np.flatnonzero(suspects)[accepted]] = True
    verdict.kink[np.flatnonzero(suspects)[accepted]] = True
    verdict.error[np.flatnonzero(suspects)[accepted]] = 0.0
    return verdict


def _adopt(verdict: Judgement, failing: np.ndarray, retry: Judgement) -> Judgement:
    """Take a smaller step's pass only where it resolves the original discrepancy: the error
    must shrink at least 4x (a wrong gradient's does not shrink with the step) and the retry's
    own measured uncertainty must stay well below the error it explains (else it proves
    nothing: a smaller step only buys more rounding noise)."""
    before = verdict.error[failing]
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
    return _report(setup, i, "elementwise", index, verdict, shape)


def _second_opinion_elements(setup: Setup, i: int, index: np.ndarray, verdict: Judgement) -> Judgement:
    """Borderline failures: one Taylor test along them; order 2 overturns, order 1 confirms."""
    failing = ~verdict.passed
    ratio = verdict.error / np.maximum(verdict.tolerance, 1e-300)
    if not failing.any() or ratio[failing].max() > BORDERLINE:
        return verdict
    mask = np.zeros(setup.host_values[i].size)
    mask[index[failing]] = 1.0
    direction = {i: _device(setup, i, _unit_coordinates(setup, mask) * _scales(setup, i))}
    result = taylor_test(setup.objective, direction, setup.gradients64, setup.noise, first_step=1.0)
    if result.consistent:
        verdict.passed[failing] = True
    return verdict


# -- projections ----------------------------------------------------------------------------


def projection_reports(setup: Setup, inputs: list[int], directions: int) -> list[InputReport]:
    specials = {i: _special_elements(setup.host_values[i], exhaustive=False) for i in inputs}
    joint = [joint_direction(setup, inputs, specials) for _ in range(directions)]
    verdict = judge_directions(setup, joint, inputs)
    if not verdict.passed.all() and verdict.nonsmooth.any():
        # a kink at the base point: look for every tie, not just the sampled ones, and retry
        specials = {i: _special_elements(setup.host_values[i], exhaustive=True) for i in inputs}
        joint = [joint_direction(setup, inputs, specials) for _ in range(directions)]
        verdict = judge_directions(setup, joint, inputs)
    if verdict.passed.all():
        return [_projection_pass(setup, i, specials[i], verdict) for i in inputs]
    return [_per_input(setup, i, _special_elements(setup.host_values[i], exhaustive=True)) for i in inputs]


def judge_directions(setup: Setup, directions: list[dict[int, Any]], inputs: list[int]) -> Judgement:
    rtol = max(setup.slack(i)[0] for i in inputs)

    exact_steps = all(setup.objective.grid[i] == "float64" for i in inputs)

    def at(scale: float, dirs: list[dict[int, Any]]) -> Judgement:
        if scale == 1.0 and exact_steps:
            coarse, fine = direction_pair(setup.objective, dirs, 1.0, setup.gradients64)
        else:
            coarse = direction_differences(setup.objective, dirs, 1.0 / scale, setup.gradients64)
            fine = direction_differences(setup.objective, dirs, 0.5 / scale, setup.gradients64)
        return judge(coarse, fine, setup.noise_eps, rtol, _direction_atol(setup, dirs, inputs))

    verdict = at(1.0, directions)
    for scale in REFINEMENTS:
        failing = ~verdict.passed
        if not failing.any():
            break
        retry = at(scale, [d for d, f in zip(directions, failing) if f])
        verdict = _adopt(verdict, failing, retry)
    failing = ~verdict.passed
    ratio = verdict.error / np.maximum(verdict.tolerance, 1e-300)
    for k in np.flatnonzero(failing & (ratio <= BORDERLINE)):
        opinion = taylor_test(setup.objective, directions[k], setup.gradients64, setup.noise)
        verdict.passed[k] = bool(opinion.consistent)
    return verdict


def _direction_atol(setup: Setup, dirs: list[dict[int, Any]], inputs: list[int]) -> np.ndarray:
    """Absolute analytic slack along each direction: sum over inputs of atol_i * |d_i|_1."""
    xp = setup.backend.xp
    out = np.zeros(len(dirs))
    for k, d in enumerate(dirs):
        for i in d:
            atol = setup.slack(i)[1]
            out[k] += atol * setup.backend.scalar(xp.sum(xp.abs(d[i])))
    return out


def _projection_pass(setup: Setup, i: int, special: np.ndarray, verdict: Judgement) -> InputReport:
    shape = setup.host_values[i].shape
    report = InputReport(
        setup.names[i], i, shape, "", "projection", True, checked=int(np.prod(shape)) - special.size
    )
    _fill_worst(report, verdict, None, shape)
    if special.size:
        _check_specials(setup, i, special, report)
    return report


def _check_specials(setup: Setup, i: int, special: np.ndarray, report: InputReport) -> None:
    """Exact zeros and ties sit on kinks; projections cannot judge them, so probe them alone."""
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
        _fill_worst(report, verdict, chosen, setup.host_values[i].shape)
        _attach_maps(report, setup, i, chosen, verdict)


def _per_input(setup: Setup, i: int, special: np.ndarray) -> InputReport:
    direction = joint_direction(setup, [i], {i: special})
    verdict = judge_directions(setup, [direction], [i])
    if verdict.passed.all():
        return _projection_pass(setup, i, special, verdict)
    return localize(setup, i, verdict)


def localize(setup: Setup, i: int, projection: Judgement) -> InputReport:
    """Confirm a failed projection element-wise on the worst block of input i."""
    shape = setup.host_values[i].shape
    block = _worst_block(setup, i, shape)
    inside = np.zeros(shape, dtype=bool)
    inside[tuple(block)] = True
    index = np.flatnonzero(inside)
    verdict = judge_elements(setup, i, index)
    report = _report(setup, i, "projection", index, verdict, shape)
    report.block = tuple(block)
    if report.passed:  # the block looked fine: the projection's evidence still stands
        report.passed = False
        _fill_worst(report, projection, None, shape)
    report.evidence["projection_error"] = float(projection.error.max())
    report.evidence["projection_tolerance"] = float(projection.tolerance.max())
    return report


def block_shape(block: list[slice]) -> tuple[int, ...]:
    return tuple(s.stop - s.start for s in block)


def _worst_block(setup: Setup, i: int, shape: tuple[int, ...]) -> list[slice]:
    """Halve the largest axis, keeping the half whose projection error is larger."""
    block = [slice(0, n) for n in shape]
    while int(np.prod(block_shape(block))) > LOCALIZE_ELEMENTS:
        axis = int(np.argmax(block_shape(block)))
        s = block[axis]
        mid = (s.start + s.stop) // 2
        halves = [slice(s.start, mid), slice(mid, s.stop)]
        scores = [_block_score(setup, i, [*block[:axis], h, *block[axis + 1 :]]) for h in halves]
        block[axis] = halves[int(np.argmax(scores))]
    return block


def _block_score(setup: Setup, i: int, block: list[slice]) -> float:
    mask = np.zeros(setup.host_values[i].shape)
    mask[tuple(block)] = 1.0
    coordinates = _unit_coordinates(setup, mask.reshape(-1)) * _scales(setup, i)
    direction = {i: _device(setup, i, coordinates)}
    verdict = judge_directions(setup, [direction], [i])
    return float(verdict.error[0] / max(verdict.tolerance[0], 1e-300))


# -- directions -------------------------------------------------------------------------------


TIE_SAMPLE = 1 << 16


def _special_elements(values: np.ndarray, *, exhaustive: bool) -> np.ndarray:
    """Flat indices of exact zeros and of values that occur more than once (ties).

    Sorting a large input costs a good part of a forward pass, so unless ``exhaustive`` ties are
    first looked for in a sample: data without a tie in 65536 draws (continuous values) skips the
    full sort; a kink showing up later brings the exhaustive search after all."""
    flat = values.reshape(-1)
    special = flat == 0
    if not exhaustive and flat.size > 4 * TIE_SAMPLE:
        sample = np.sort(flat[:: flat.size // TIE_SAMPLE])  # evenly strided: no random draw to pay
        if not (sample[1:] == sample[:-1]).any():
            return np.flatnonzero(special)
    ordered = np.sort(flat)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size:
        special |= np.isin(flat, repeated)
    return np.flatnonzero(special)


def signed_magnitudes(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    """Random signs times magnitudes in [0.5, 1.5): no coordinate is tiny. Computed in place
    (each pass over a large input costs as much as a cheap layer's forward)."""
    u = rng.random(shape)
    u *= 2.0
    u -= 1.0  # uniform in [-1, 1)
    negative = u < 0
    np.abs(u, out=u)
    u += 0.5
    np.negative(u, out=u, where=negative)
    return u


def _unit_coordinates(setup: Setup, mask: np.ndarray) -> np.ndarray:
    return signed_magnitudes(setup.rng, mask.size) * mask


def _scales(setup: Setup, i: int) -> np.ndarray:
    values = setup.host_values[i].reshape(-1)
    return element_steps(values, setup.fractions[i])


def _device(setup: Setup, i: int, flat: np.ndarray) -> Any:
    return setup.backend.from_numpy(flat.reshape(setup.host_values[i].shape))


def joint_direction(setup: Setup, inputs: list[int], specials: dict[int, np.ndarray]) -> dict[int, Any]:
    """One direction over all inputs, each input's share rescaled so that no input's
    contribution <g_i, d_i> drowns another's (a tiny bias gradient next to a huge weight one)."""
    raw = {}
    for i in inputs:
        coordinates = signed_magnitudes(setup.rng, setup.host_values[i].size)
        coordinates[specials[i]] = 0.0
        coordinates *= _scales(setup, i)
        raw[i] = coordinates
    weight = {i: _norm(setup.host_gradients[i].reshape(-1) * raw[i]) for i in inputs}
    positive = [w for w in weight.values() if w > 0]
    smallest = min(positive) if positive else 1.0
    for i in inputs:
        raw[i] *= _balance(weight[i], smallest)
    return {i: _device(setup, i, raw[i]) for i in inputs}


def _norm(v: np.ndarray) -> float:
    """The 2-norm without BLAS: a BLAS call wakes OpenBLAS's thread pool, which then spins
    against torch's own threads through the layer's next calls (2x slower checks on 2 cores)."""
    v *= v  # in place: v is a temporary of ours
    return float(np.sqrt(np.sum(v)))


def _balance(weight: float, smallest: float) -> float:
    return 1.0 if weight <= 0 else float(np.clip(smallest / weight, 1e-3, 1.0))


# -- reporting --------------------------------------------------------------------------------


def _report(
    setup: Setup, i: int, mode: str, index: np.ndarray, verdict: Judgement, shape: tuple[int, ...]
) -> InputReport:
    report = InputReport(setup.names[i], i, shape, "", mode, bool(verdict.passed.all()))
    report.checked = index.size
    report.kinks = int(verdict.kink.sum())
    report.failing = int((~verdict.passed).sum())
    _fill_worst(report, verdict, index, shape)
    _attach_maps(report, setup, i, index, verdict)
    return report


def _attach_maps(report: InputReport, setup: Setup, i: int, index: np.ndarray, verdict: Judgement) -> None:
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


def _fill_worst(
    report: InputReport, verdict: Judgement, index: np.ndarray | None, shape: tuple[int, ...]
) -> None:
    if verdict.error.size == 0:
        return
    ratio = verdict.error / np.maximum(verdict.tolerance, 1e-300)
    k = int(np.argmax(ratio)) if not verdict.passed.all() else int(np.argmax(verdict.error))
    scale = max(float(np.max(np.abs(verdict.numeric))), 1e-300)
    rel = verdict.error / np.maximum(np.abs(verdict.numeric), 1e-3 * scale)
    report.max_abs_err = float(verdict.error.max())
    report.max_rel_err = float(rel.max())
    report.numeric = float(verdict.numeric[k])
    report.analytic = float(verdict.analytic[k])
    report.tolerance = float(verdict.tolerance[k])
    if index is not None and shape:
        report.worst_index = tuple(int(v) for v in np.unravel_index(int(index[k]), shape))
    elif index is not None:
        report.worst_index = ()


__all__ = ["Setup", "elementwise_report", "joint_direction", "judge_directions", "projection_reports"]
