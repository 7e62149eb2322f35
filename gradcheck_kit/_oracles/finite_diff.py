"""Finite differences of F(x) = sum_o <dy_o, f_o(x)> in float64, with kink and noise detection.

A *probe* is one direction: a single element (element-wise mode) or a random projection. For
each probe we evaluate F at x ± t·d and x ± (t/2)·d, so for every probe we know

* two central differences; for a correct gradient their error shrinks ~4x per halving (truncation)
  or grows ~2x (rounding noise), while a wrong gradient leaves the same error at both: the
  disagreement between them *measures* the finite-difference error instead of assuming it;
* the one-sided slopes on either side of x: where they differ by more than smooth curvature
  allows, x sits on a kink (ReLU or abs at 0, a max tie) and any analytic value between the two
  slopes is a valid subgradient.

Perturbed values are rounded to the grid the layer really computes on (float32 when it casts
inside), and the step actually taken is measured from the rounded value, so rounding of the
inputs never masquerades as a gradient error.

Memory: besides grad_output and the outputs at the base point, an objective keeps one array of
the outputs' size (their rounding scale); reductions over outputs larger than ``BLOCK`` elements
run block by block, so a check holds a few times its layer's own arrays, never one temporary
per operation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._ground.backends import Backend, dtype_name, eps
from .._ground.invoke import LayerCallError, call, outputs_of


def round_to(value: float, grid: str) -> float:
    """The float64 value of ``value`` rounded to ``grid`` (round-to-nearest)."""
    if grid == "float64":
        return float(value)
    if grid == "bfloat16":
        import torch

        return float(torch.tensor(value, dtype=torch.float64).to(torch.bfloat16).double())
    return float(np.dtype(grid).type(value))


BLOCK = 1 << 18  # elements (2 MiB of float64): reductions over larger outputs go block by block


def blocks(*arrays: Any) -> list[list[Any]]:
    """The same-shaped ``arrays`` as flat blocks of ``BLOCK`` elements (whole when small)."""
    count = math.prod(arrays[0].shape)
    if count <= 2 * BLOCK:
        return [list(arrays)]
    flat = [a.reshape(-1) for a in arrays]
    return [[f[start : start + BLOCK] for f in flat] for start in range(0, count, BLOCK)]


@dataclass
class Objective:
    """F(x) = sum_o <dy_o, f_o(x)>, accumulated in float64 on the inputs' own device."""

    forward: Callable[..., Any]
    params: Mapping[str, Any]
    base: list[Any]
    base64: dict[int, Any]
    grid: dict[int, str]
    dy: list[Any | None]
    backend: Backend
    counter: Counter[str] = field(default_factory=Counter)
    base_outputs: list[Any] = field(default_factory=list)  # float64 outputs at the base point
    terms: list[Any] | None = None  # measured term magnitudes per output (measure_terms)
    _sizes: list[Any] | None = None
    _floor: float | None = None
    _spread: float | None = None

    def outputs(self, replaced: Mapping[int, Any]) -> tuple[Any, ...]:
        args = [replaced.get(i, x) for i, x in enumerate(self.base)]
        value = call(self.forward, args, self.params, "forward (finite differences)", self.counter)
        outputs = outputs_of(value, self.backend.name)
        if len(outputs) != len(self.dy):
            raise LayerCallError(
                "forward", f"returned {len(outputs)} outputs at a perturbed point, {len(self.dy)} before"
            )
        return outputs

    def evaluate(self, replaced: Mapping[int, Any], *, keep: bool = True) -> list[Any]:
        """The outputs at the replaced point in float64 (None where no grad_output). ``keep``
        copies them: a layer may hand back one buffer that its next call overwrites, so outputs
        used only before the next call need no copy."""
        convert = self.backend.float64 if keep else self.backend.as_float64
        return [convert(y) if dy is not None else None for dy, y in zip(self.dy, self.outputs(replaced))]

    def delta(self, outputs: Sequence[Any]) -> float:
        """F(outputs) - F(base) as sum <dy, y - y0>: differencing outputs before reducing keeps
        the float64 sum's own rounding (relative to all of F) out of the difference."""
        total = 0.0
        for dy, y, y0 in zip(self.dy, outputs, self.base_outputs):
            if dy is not None:
                total += sum(self.backend.dot(d, a - a0) for d, a, a0 in blocks(dy, y, y0))
        return total

    def changes(self, plus: Sequence[Any], minus: Sequence[Any]) -> tuple[float, int]:
        """(sum |dy| size over the outputs that moved, how many moved).

        Outputs a perturbation does not reach are recomputed bit for bit, so their rounding
        cancels in F(x+) - F(x-); the others carry rounding of the terms summed into them (see
        ``measure_terms``). The count says how many outputs one element feeds (diagnosis)."""
        total, count = 0.0, 0
        for dy, y0, size, yp, ym in zip(self.dy, self.base_outputs, self.sizes(), plus, minus):
            if dy is None:
                continue
            for block in blocks(dy, y0, size, yp, ym):
                change, moved = self._moved(*block)
                total, count = total + change, count + moved
        return max(total, self._one_output()), count

    def _moved(self, dy: Any, y0: Any, size: Any, yp: Any, ym: Any) -> tuple[float, int]:
        xp = self.backend.xp
        moved = (yp != y0) | (ym != y0)
        biggest = xp.maximum(xp.maximum(xp.abs(yp), xp.abs(ym)), size)
        total = self.backend.scalar(xp.sum(xp.where(moved, xp.abs(dy) * biggest, 0.0)))
        return total, int(self.backend.scalar(xp.sum(xp.astype(moved, xp.int64))))

    def _one_output(self) -> float:
        """A change smaller than half an ulp moves no output at all; one output's rounding is
        the least noise any probe carries."""
        if self._floor is None:
            xp = self.backend.xp
            self._floor = max(
                (
                    self.backend.scalar(xp.max(xp.abs(d) * s))
                    for dy, size in zip(self.dy, self.sizes())
                    if dy is not None and math.prod(size.shape)
                    for d, s in blocks(dy, size)
                ),
                default=0.0,
            )
        return self._floor

    def measure_terms(self, rng: np.random.Generator, ulps: float = 16.0) -> None:
        """How large the terms summed into each output are, measured with one forward call.

        Rounding in an output follows the terms summed into it, not the output itself: a loss
        near zero from a log-sum-exp of O(1) values, a dot product that cancels. Nudging every
        input by ``ulps`` ulps (random signs) moves each output by about ``ulps`` ulps of those
        terms, which is what we read off."""
        replaced = {}
        for i, x64 in self.base64.items():
            signs = self.backend.from_numpy(rng.choice([-1.0, 1.0], size=tuple(x64.shape)))
            replaced[i] = self.feed(i, x64 * (1 + ulps * eps(self.grid[i]) * signs))
        nudge = ulps * max(eps(g) for g in self.grid.values()) if self.grid else ulps * eps("float64")
        try:
            moved = self.evaluate(replaced)  # copies: ours to overwrite with |m - y| / nudge
        except LayerCallError:
            return
        self.terms = [
            None if y is None else self.backend.scaled_distance(m, y, nudge)
            for m, y in zip(moved, self.base_outputs)
        ]

    def sizes(self) -> list[Any]:
        """Per output, the scale of its rounding: max(|y|, its tensor's RMS, the measured terms
        and a tenth of the largest of them, since a random nudge can cancel by chance). Once
        known, the measured terms are let go (a twin or a variant shares the sizes)."""
        if self._sizes is None:
            terms = self.terms if self.terms is not None else [None] * len(self.base_outputs)
            self._sizes = [None if y is None else self._size(y, t) for y, t in zip(self.base_outputs, terms)]
            self.terms = None
        return self._sizes

    def _size(self, y: Any, measured: Any) -> Any:
        b = self.backend
        size = b.xp.abs(y)
        count = math.prod(y.shape)
        floor = float(np.sqrt(b.dot(y, y) / count)) if count else 0.0  # the RMS
        if measured is not None and math.prod(measured.shape):
            size = b.raise_to(size, measured)
            floor = max(floor, 0.1 * b.scalar(b.xp.max(measured)))
        return b.raise_to(size, floor)

    def base_spread(self) -> float:
        """Rounding of many independently rounded outputs adds like a random walk: the root sum
        of squares of |dy| size, times sqrt(log2 n) for the float64 summation itself."""
        if self._spread is None:
            squares, count = 0.0, 0
            for dy, size in zip(self.dy, self.sizes()):
                if dy is None:
                    continue
                for d, s in blocks(dy, size):
                    terms = d * s  # squared next: no abs needed
                    squares += self.backend.dot(terms, terms)
                count += math.prod(dy.shape)
            self._spread = float(np.sqrt(squares)) * 2.0 * float(np.sqrt(max(1.0, np.log2(max(count, 2)))))
        return self._spread

    def feed(self, i: int, values64: Any) -> Any:
        """Round float64 ``values64`` to input i's grid, then to the dtype the layer is fed."""
        b, fed = self.backend, dtype_name(self.base[i])
        if self.grid[i] == "float64" == fed:  # a fresh array already: nothing to round or convert
            return np.asarray(values64) if b.name == "numpy" else values64  # (0-d math gives scalars)
        grid_values = b.astype(values64, self.grid[i])
        return grid_values if self.grid[i] == fed else b.astype(grid_values, fed)


@dataclass
class Differences:
    """F(x + step_plus) - F(x) and F(x) - F(x + step_minus) for P probes, with the analytic
    predictions."""

    up: np.ndarray
    down: np.ndarray
    w_plus: np.ndarray  # length of the plus step, in probe units (> 0)
    w_minus: np.ndarray  # length of the minus step (> 0)
    a_plus: np.ndarray  # <g, step_plus>
    a_minus: np.ndarray  # <g, step_minus> (step_minus points backwards)
    a_abs: np.ndarray  # sum |g| |step_plus - step_minus|: scale of analytic rounding
    magnitude: np.ndarray  # sum |dy y| that rounding noise in F(x+) - F(x-) is relative to
    moved: np.ndarray | None = None  # outputs each element probe moved (None for directions)

    @property
    def width(self) -> np.ndarray:
        return self.w_plus + self.w_minus

    @property
    def numeric(self) -> np.ndarray:
        return (self.up + self.down) / self.width

    @property
    def analytic(self) -> np.ndarray:
        return (self.a_plus - self.a_minus) / self.width


def element_differences(
    objective: Objective, i: int, flat_index: np.ndarray, steps: np.ndarray, gradient: np.ndarray
) -> Differences:
    """Perturb input i one element at a time (``flat_index``, steps ``steps``)."""
    b = objective.backend
    work = b.copy(objective.base[i])
    flat = b.xp.reshape(work, (-1,))
    base_flat = _host_flat(objective.base64[i])
    grid, n = objective.grid[i], len(flat_index)
    rows = np.empty((6, n))
    for k, (j, t) in enumerate(zip(flat_index.tolist(), steps.tolist())):
        rows[:, k] = _element_probe(objective, i, work, flat, j, base_flat[j], t, grid)
    g = gradient[flat_index]
    return Differences(
        rows[0],
        rows[1],
        rows[2],
        rows[3],
        g * rows[2],
        -g * rows[3],
        np.abs(g) * (rows[2] + rows[3]),
        rows[4],
        rows[5],
    )


def _element_probe(
    objective: Objective, i: int, work: Any, flat: Any, j: int, x: float, t: float, grid: str
) -> tuple[float, ...]:
    """up, down, both step widths, changes and outputs moved for element j of input i. The
    plus outputs are copied (the minus call may overwrite the layer's buffer), the minus ones
    are used before any other call and need no copy; neither outlives the probe."""
    plus, minus = round_to(x + t, grid), round_to(x - t, grid)
    out_plus = _evaluate_with(objective, i, work, flat, j, plus, keep=True)
    out_minus = _evaluate_with(objective, i, work, flat, j, minus, keep=False)
    up, down = objective.delta(out_plus), -objective.delta(out_minus)
    moved = objective.changes(out_plus, out_minus)
    flat[j] = x  # after: an output may be a view of the input
    return (up, down, plus - x, x - minus, *moved)


def _evaluate_with(
    objective: Objective, i: int, work: Any, flat: Any, j: int, value: float, *, keep: bool
) -> list[Any]:
    flat[j] = value
    return objective.evaluate({i: work}, keep=keep)


def _host_flat(x: Any) -> np.ndarray:
    from .._ground.backends import to_numpy

    return to_numpy(x).reshape(-1).astype(np.float64)


def direction_differences(
    objective: Objective,
    directions: Sequence[Mapping[int, Any]],
    step: float,
    gradients64: Mapping[int, Any],
    sides: tuple[float, ...] = (1.0, -1.0),
) -> Differences:
    """Perturb all inputs in ``directions`` at once (one probe per direction), by ±step·d."""
    b = objective.backend
    rows = np.zeros((6, len(directions)))
    for k, direction in enumerate(directions):
        moved: dict[float, dict[int, Any]] = {}
        for sign in sides:
            row = 0 if sign > 0 else 1
            change, predicted, moved[sign] = step_along(objective, direction, sign * step, gradients64)
            rows[row, k], rows[row + 2, k] = sign * change, predicted
        rows[4, k] = sum(_analytic_scale(b, gradients64[i], moved, i) for i in direction)
        rows[5, k] = objective.base_spread()
    ones = np.full(len(directions), step)
    return Differences(rows[0], rows[1], ones, ones.copy(), rows[2], rows[3], rows[4], rows[5])


def step_along(
    objective: Objective, direction: Mapping[int, Any], s: float, gradients64: Mapping[int, Any]
) -> tuple[float, float, dict[int, Any]]:
    """F(x + s·d) - F(x), the analytic prediction <g, step taken>, and the steps taken (float64,
    after rounding to each input's grid): one forward call."""
    b, replaced = objective.backend, {}
    for i, d in direction.items():
        moved_to = d * s
        moved_to += objective.base64[i]  # in place: no second temporary of the input's size
        replaced[i] = objective.feed(i, moved_to)
    change = objective.delta(objective.evaluate(replaced, keep=False))
    taken = {i: _step_taken(b, fed, objective.base64[i]) for i, fed in replaced.items()}
    return change, sum(b.dot(gradients64[i], taken[i]) for i in direction), taken


def _step_taken(b: Backend, fed: Any, x64: Any) -> Any:
    """The step the layer really saw, measured after rounding to its grid: fed - x in float64.
    Computed in place: ``fed`` is our own array and the layer's call on it is over (adapters
    for stateful layers re-run forward before backward)."""
    taken = b.as_float64(fed)
    taken -= x64
    return taken


def _analytic_scale(b: Backend, g: Any, moved: Mapping[float, Mapping[int, Any]], i: int) -> float:
    """sum |g| |x+ - x-| for input i: the scale of the analytic prediction's rounding. One-sided
    calls stand in the mirror image of the plus step for the minus one (a span of twice it).
    The steps are ours and used for nothing after this: the span reuses the plus step's memory."""
    span = moved[1.0][i]
    if -1.0 in moved:
        span -= moved[-1.0][i]
    else:
        span *= 2.0
    span *= g
    return b.sum_abs(span)


def direction_pair(
    objective: Objective,
    directions: Sequence[Mapping[int, Any]],
    step: float,
    gradients64: Mapping[int, Any],
) -> tuple[Differences, Differences]:
    """Coarse (±step) and fine (±step/2) differences from three evaluations instead of four.

    F(x - step/2) is not evaluated but read off the cubic through F at x - step, x, x + step/2
    and x + step (F(x) is the forward already run). For a smooth F this keeps the fine central
    difference's h^2/4 truncation, so the two-scale judgement is unchanged; only valid where
    steps are not rounded (a float64 grid), and only for the first look: refinements evaluate
    all four points."""
    coarse = direction_differences(objective, directions, step, gradients64)
    half = direction_differences(objective, directions, step / 2, gradients64, sides=(1.0,))
    u1, d1, u_half = coarse.up, coarse.down, half.up
    curvature = (u1 - d1) / 2  # b in u(s) = a s + b s^2 + c s^3, s in units of step
    slope = (8 * u_half - (u1 - d1) - (u1 + d1) / 2) / 3  # a
    cubic = (u1 + d1) / 2 - slope  # c
    down_half = slope / 2 - curvature / 4 + cubic / 8  # -u(-1/2)
    fine = Differences(
        u_half,
        down_half,
        half.w_plus,
        half.w_plus.copy(),
        half.a_plus,
        -half.a_plus,
        half.a_abs,
        np.maximum(half.magnitude, coarse.magnitude),
    )
    return coarse, fine


@dataclass
class Judgement:
    """Per-probe verdicts and the numbers behind them (derivative units)."""

    passed: np.ndarray
    kink: np.ndarray  # accepted as a kink (analytic between the one-sided slopes)
    nonsmooth: np.ndarray  # one-sided slopes differ beyond smooth curvature, accepted or not
    numeric: np.ndarray
    analytic: np.ndarray
    error: np.ndarray
    tolerance: np.ndarray
    spread: np.ndarray  # |e(t) - e(t/2)|: the measured finite-difference uncertainty
    moved: np.ndarray  # outputs moved per probe (NaN for projections)
    residual: np.ndarray  # the larger one-sided |change - analytic prediction| at the finer step
    noise: np.ndarray  # the rounding noise bound of one such change
    width: np.ndarray  # the finer step's width (plus and minus)
    one_sided: tuple[np.ndarray, np.ndarray]


def judge(
    coarse: Differences,
    fine: Differences,
    noise_per_magnitude: float,
    rtol: float,
    atol: np.ndarray | float,
) -> Judgement:
    """Compare analytic and numeric slopes at two step sizes; see the module docstring.

    ``noise_per_magnitude`` times a probe's ``magnitude`` bounds the rounding noise in F."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _judge(coarse, fine, noise_per_magnitude, rtol, atol)


def _judge(
    coarse: Differences, fine: Differences, noise_per_magnitude: float, rtol: float, atol: np.ndarray | float
) -> Judgement:
    noise = noise_per_magnitude * np.maximum(coarse.magnitude, fine.magnitude)
    e1 = coarse.numeric - coarse.analytic
    e2 = fine.numeric - fine.analytic
    slack = rtol * np.abs(fine.numeric) + atol + rtol * fine.a_abs / fine.width
    noise2 = 2.0 * noise / fine.width
    smooth_ok = np.abs(e2) <= 0.5 * np.abs(e1 - e2) + noise2 + slack

    s_plus = [d.up / d.w_plus for d in (coarse, fine)]
    s_minus = [d.down / d.w_minus for d in (coarse, fine)]
    g_plus, g_minus = fine.a_plus / fine.w_plus, -fine.a_minus / fine.w_minus
    drift = np.abs(s_plus[0] - s_plus[1]) + np.abs(s_minus[0] - s_minus[1])
    noise1 = 2.0 * noise / np.minimum(fine.w_plus, fine.w_minus)
    gap = np.abs(s_plus[1] - s_minus[1])
    kink = gap > 4.0 * drift + 4.0 * noise1 + slack
    err_plus, err_minus = s_plus[1] - g_plus, s_minus[1] - g_minus
    kink_tol = drift + noise1 + slack
    between = (np.minimum(err_plus, err_minus) <= kink_tol) & (np.maximum(err_plus, err_minus) >= -kink_tol)
    kink_ok = kink & between & ~smooth_ok
    tol = 0.5 * np.abs(e1 - e2) + noise2 + slack
    error = np.where(kink_ok, 0.0, np.abs(e2))
    return Judgement(
        smooth_ok | kink_ok,
        kink_ok,
        kink & ~smooth_ok,
        fine.numeric,
        fine.analytic,
        error,
        tol,
        np.abs(e1 - e2),
        fine.moved if fine.moved is not None else np.full(fine.up.shape, np.nan),
        np.maximum(np.abs(fine.up - fine.a_plus), np.abs(fine.down + fine.a_minus)),
        noise,
        fine.width,
        (s_plus[1], s_minus[1]),
    )


FIELDS = (
    "passed",
    "kink",
    "nonsmooth",
    "numeric",
    "analytic",
    "error",
    "tolerance",
    "spread",
    "moved",
    "residual",
    "noise",
    "width",
)


def subset(j: Judgement, keep: np.ndarray) -> Judgement:
    sides = (j.one_sided[0][keep], j.one_sided[1][keep])
    return Judgement(**{n: getattr(j, n)[keep] for n in FIELDS}, one_sided=sides)


def merge(first: Judgement, second: Judgement, where: np.ndarray) -> Judgement:
    """Replace the probes ``where`` (a bool mask over first) by ``second``'s verdicts."""
    parts = {}
    for name in FIELDS:
        merged = getattr(first, name).copy()
        merged[where] = getattr(second, name)
        parts[name] = merged
    sides = []
    for a, b in zip(first.one_sided, second.one_sided):
        side = a.copy()
        side[where] = b
        sides.append(side)
    return Judgement(**parts, one_sided=(sides[0], sides[1]))
