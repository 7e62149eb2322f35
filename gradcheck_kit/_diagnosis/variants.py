"""Finite-difference hypothesis tests: "the analytic gradient is the true gradient of a slightly
different problem". Each builds that problem (another grad_output, other params), keeps the
user's analytic gradient (possibly transformed), and runs the same projection check the verdict
used: a pass means the hypothesis explains the gradient to finite-difference accuracy.

- reflected grad_output, reflected result: the kernel was not rotated 180° in dX (a correlation
  where a convolution was due; for a 1-d filter, g(i - k) where g(k - i) was due);
- grad_output masked to item 0 (or filter 0): the sum over the batch (filters) is missing;
- stride 1 with grad_output placed undilated: dY was not dilated by the stride.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._engine.descend import judge_directions
from .._engine.directions import joint_direction, special_elements
from .._engine.setup import Setup
from .._engine.tolerances import element_steps
from .._engine.verdicts import ratio
from .._ground.backends import to_numpy
from .._ground.geometry import ints, largest, shifted, shifts, spatial_axes
from .._oracles.taylor import TaylorResult, taylor_test

TRIALS = 2  # directions per hypothesis: both must pass


@dataclasses.dataclass
class Verdict:
    holds: bool
    relative_error: float
    exact: bool = True  # False when it only holds on part of the input (after a shift)
    which: str = "0"  # the item or filter a sum stopped at


def variant(
    setup: Setup,
    i: int,
    dy: Sequence[np.ndarray | None],
    analytic: np.ndarray,
    params: dict[str, Any] | None = None,
) -> Setup | None:
    """The same check with another grad_output (host arrays), params and analytic gradient."""
    obj, b = setup.objective, setup.backend
    dy64 = [b.from_numpy(d.astype(np.float64)) if d is not None else None for d in dy]
    new = dataclasses.replace(obj, params=params if params is not None else obj.params, dy=dy64)
    if params is None:
        new.base_outputs, new.terms = obj.base_outputs, obj.terms
    else:
        outputs = new.outputs({})
        if [tuple(o.shape) for o in outputs] != [None if d is None else d.shape for d in dy]:
            return None
        new.base_outputs = [b.float64(o) if d is not None else None for o, d in zip(outputs, dy)]
    return setup.variant(new, i, analytic)


def holds(setup: Setup | None, i: int, valid: np.ndarray | None = None) -> Verdict:
    """Whether the variant's analytic gradient for input i passes the projection check, along
    directions confined to the ``valid`` elements (all by default)."""
    if setup is None:
        return Verdict(False, float("inf"))
    # zeros and ties sit on kinks, where any value between the one-sided slopes passes: they
    # cannot tell one explanation from another, so the directions leave them out
    excluded = set(special_elements(setup.host_values[i], exhaustive=True).tolist())
    if valid is not None:
        excluded |= set(np.flatnonzero(~valid.reshape(-1)).tolist())
    if len(excluded) >= setup.host_values[i].size:
        return Verdict(False, float("inf"))  # nothing left to tell explanations apart with
    left_out = {i: np.array(sorted(excluded), dtype=np.int64)}
    directions = [joint_direction(setup, [i], left_out) for _ in range(TRIALS)]
    verdict = judge_directions(setup, directions, [i])
    explained = bool(verdict.passed.all()) and not verdict.kink.any()
    return Verdict(explained, float(np.max(ratio(verdict.error, np.abs(verdict.numeric)))))


def grad_output(setup: Setup) -> list[np.ndarray | None]:
    return [to_numpy(d).astype(np.float64) if d is not None else None for d in setup.objective.dy]


def _reflect(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.flip(a, axis=axes) if axes else a


def kernel_not_rotated(setup: Setup, i: int) -> Verdict:
    """dX_user = R(dX_true for grad_output R(dy)), R reflecting the spatial axes; with a stride,
    the reflected grid lands up to stride - 1 elements off, so small shifts are tried too."""
    dy = grad_output(setup)
    x_axes = spatial_axes(setup.host_values[i].ndim)
    if len(dy) != 1 or dy[0] is None or not x_axes or dy[0].ndim != setup.host_values[i].ndim:
        return Verdict(False, float("inf"))
    reflected = [_reflect(dy[0], spatial_axes(dy[0].ndim))]
    best = Verdict(False, float("inf"))
    for shift in shifts(
        len(x_axes), largest(setup.objective.params, "stride", default=1) - 1, negative_only=True
    ):
        moved, valid = shifted(setup.host_gradients[i], x_axes, tuple(-s for s in shift))
        candidate = holds(
            variant(setup, i, reflected, _reflect(moved, x_axes).copy()), i, _reflect(valid, x_axes)
        )
        candidate.exact = not any(shift)
        if candidate.holds:
            return candidate
        best = min(best, candidate, key=lambda v: v.relative_error)
    return best


def sum_missing(setup: Setup, i: int, axis: int) -> Verdict:
    """dW_user = the gradient from one item (filter) of grad_output alone: the first (the sum
    never ran past it) or the last (each item's contribution overwrote the one before)."""
    dy = grad_output(setup)
    if len(dy) != 1 or dy[0] is None or dy[0].ndim <= axis or dy[0].shape[axis] < 2:
        return Verdict(False, float("inf"))
    best = Verdict(False, float("inf"))
    for item in (0, dy[0].shape[axis] - 1):
        masked = np.zeros_like(dy[0])
        keep = [slice(None)] * dy[0].ndim
        keep[axis] = slice(item, item + 1)
        masked[tuple(keep)] = dy[0][tuple(keep)]
        verdict = holds(variant(setup, i, [masked], setup.host_gradients[i].copy()), i)
        if verdict.holds:
            verdict.which = "0" if item == 0 else f"{item} (the last)"
            return verdict
        best = min(best, verdict, key=lambda v: v.relative_error)
    return best


def not_dilated(setup: Setup, i: int, stride_key: str = "stride") -> Verdict:
    """dX_user = dX of the same layer at stride 1 with dY placed undilated (top-left)."""
    params = dict(setup.objective.params)
    stride = params.get(stride_key)
    dy = grad_output(setup)
    if stride is None or max(ints(stride) or [1]) < 2 or len(dy) != 1 or dy[0] is None:
        return Verdict(False, float("inf"))
    params[stride_key] = 1 if isinstance(stride, int) else tuple(1 for _ in stride)
    try:
        outputs = setup.objective.forward(*setup.objective.base, **params)
    except Exception:
        return Verdict(False, float("inf"))
    out = outputs if isinstance(outputs, tuple) else (outputs,)
    if len(out) != 1 or out[0].ndim != dy[0].ndim:
        return Verdict(False, float("inf"))
    placed = np.zeros(tuple(out[0].shape))
    region = tuple(slice(0, min(a, b)) for a, b in zip(dy[0].shape, placed.shape))
    placed[region] = dy[0][region]
    return holds(variant(setup, i, [placed], setup.host_gradients[i].copy(), params), i)


def taylor_orders(setup: Setup, i: int, mask: np.ndarray | None) -> TaylorResult:
    """Observed Taylor orders along a direction over input i (restricted to ``mask``)."""
    values = setup.host_values[i]
    keep = np.ones(values.size) if mask is None or not mask.any() else mask.reshape(-1).astype(float)
    u = setup.rng.uniform(-1.0, 1.0, size=values.size)
    # steps from 1e3 x the finite-difference step down to ~16x it: well above rounding noise
    scale = element_steps(values.reshape(-1), setup.fractions[i]) * 1e3
    steps = np.copysign(0.5 + np.abs(u), u) * keep * scale
    direction = {i: setup.backend.from_numpy(steps.reshape(values.shape))}
    return taylor_test(setup.objective, direction, setup.gradients64, setup.noise, first_step=1.0, halvings=6)


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """A bug pattern tested as a variant problem, with the words that name it."""

    test: Callable[[Setup, int], Verdict]
    message: str  # {which}: the item or filter a sum stopped at


HYPOTHESES: dict[str, Hypothesis] = {
    "kernel_not_rotated": Hypothesis(
        kernel_not_rotated,
        "kernel not rotated 180° in dX: the analytic dX is the true dX of the 180°-rotated problem "
        "(a correlation where a convolution was due)",
    ),
    "batch_sum_missing": Hypothesis(
        lambda s, i: sum_missing(s, i, 0),
        "sum over the batch missing: the analytic gradient is batch item {which}'s contribution alone",
    ),
    "filter_sum_missing": Hypothesis(
        lambda s, i: sum_missing(s, i, 1),
        "sum over filters (channels of grad_output) missing: the analytic gradient is filter {which}'s "
        "contribution alone",
    ),
    "stride_grid": Hypothesis(
        not_dilated,
        "dY not dilated by the stride: the analytic gradient is stride 1's with grad_output placed undilated",
    ),
}


def transformed(setup: Setup, i: int, inverse: np.ndarray, valid: np.ndarray | None = None) -> Verdict:
    """The analytic gradient is T(true gradient): test T^-1(analytic) against the same problem."""
    return holds(variant(setup, i, grad_output(setup), inverse.copy()), i, valid)
