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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends import Backend, dtype_name
from ..invoke import LayerCallError, call, outputs_of


def round_to(value: float, grid: str) -> float:
    """The float64 value of ``value`` rounded to ``grid`` (round-to-nearest)."""
    if grid == "float64":
        return float(value)
    if grid == "bfloat16":
        import torch

        return float(torch.tensor(value, dtype=torch.float64).to(torch.bfloat16).double())
    return float(np.dtype(grid).type(value))


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

    def outputs(self, replaced: Mapping[int, Any]) -> tuple[Any, ...]:
        args = [replaced.get(i, x) for i, x in enumerate(self.base)]
        value = call(self.forward, args, self.params, "forward (finite differences)", self.counter)
        outputs = outputs_of(value, self.backend.name)
        if len(outputs) != len(self.dy):
            raise LayerCallError(
                "forward", f"returned {len(outputs)} outputs at a perturbed point, {len(self.dy)} before"
            )
        return outputs

    def __call__(self, replaced: Mapping[int, Any]) -> float:
        return self.value(self.outputs(replaced))

    def value(self, outputs: Sequence[Any]) -> float:
        xp, total = self.backend.xp, 0.0
        for dy, y in zip(self.dy, outputs):
            if dy is not None:
                total += self.backend.scalar(xp.sum(dy * self.backend.float64(y)))
        return total

    def magnitude(self, outputs: Sequence[Any]) -> float:
        """sum |dy * y|: the scale rounding noise in F is relative to."""
        xp, total = self.backend.xp, 0.0
        for dy, y in zip(self.dy, outputs):
            if dy is not None:
                total += self.backend.scalar(xp.sum(xp.abs(dy * self.backend.float64(y))))
        return total

    def feed(self, i: int, values64: Any) -> Any:
        """Round float64 ``values64`` to input i's grid, then to the dtype the layer is fed."""
        b = self.backend
        grid_values = b.astype(values64, self.grid[i])
        return b.astype(grid_values, dtype_name(self.base[i]))


@dataclass
class Differences:
    """F at x + step_plus and x + step_minus for P probes, with the analytic predictions."""

    f_plus: np.ndarray
    f_minus: np.ndarray
    w_plus: np.ndarray  # length of the plus step, in probe units (> 0)
    w_minus: np.ndarray  # length of the minus step (> 0)
    a_plus: np.ndarray  # <g, step_plus>
    a_minus: np.ndarray  # <g, step_minus> (step_minus points backwards)
    a_abs: np.ndarray  # sum |g| |step_plus - step_minus|: scale of analytic rounding

    @property
    def width(self) -> np.ndarray:
        return self.w_plus + self.w_minus

    @property
    def numeric(self) -> np.ndarray:
        return (self.f_plus - self.f_minus) / self.width

    @property
    def analytic(self) -> np.ndarray:
        return (self.a_plus - self.a_minus) / self.width

    def subset(self, keep: np.ndarray) -> Differences:
        return Differences(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


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
        x = base_flat[j]
        plus, minus = round_to(x + t, grid), round_to(x - t, grid)
        rows[0, k] = _evaluate_with(objective, i, work, flat, j, plus)
        rows[1, k] = _evaluate_with(objective, i, work, flat, j, minus)
        flat[j] = x
        rows[2, k], rows[3, k] = plus - x, x - minus
    g = gradient[flat_index]
    return Differences(
        rows[0], rows[1], rows[2], rows[3], g * rows[2], -g * rows[3], np.abs(g) * (rows[2] + rows[3])
    )


def _evaluate_with(objective: Objective, i: int, work: Any, flat: Any, j: int, value: float) -> float:
    flat[j] = value
    return objective({i: work})


def _host_flat(x: Any) -> np.ndarray:
    from ..backends import to_numpy

    return to_numpy(x).reshape(-1).astype(np.float64)


def direction_differences(
    objective: Objective,
    directions: Sequence[Mapping[int, Any]],
    step: float,
    gradients64: Mapping[int, Any],
) -> Differences:
    """Perturb all inputs in ``directions`` at once (one probe per direction), by ±step·d."""
    b, xp = objective.backend, objective.backend.xp
    rows = np.empty((7, len(directions)))
    for k, direction in enumerate(directions):
        moved = {}
        for sign, row in ((1.0, 0), (-1.0, 1)):
            replaced, predicted, deltas = {}, 0.0, {}
            for i, d in direction.items():
                x64 = objective.base64[i]
                fed = objective.feed(i, x64 + (sign * step) * d)
                deltas[i] = b.float64(fed) - x64
                replaced[i] = fed
                predicted += b.scalar(xp.sum(gradients64[i] * deltas[i]))
            rows[row, k] = objective(replaced)
            rows[row + 2, k] = predicted
            moved[sign] = deltas
        rows[4, k] = sum(
            b.scalar(xp.sum(xp.abs(gradients64[i] * (moved[1.0][i] - moved[-1.0][i]))))
            for i in direction
        )
    ones = np.full(len(directions), step)
    return Differences(rows[0], rows[1], ones, ones.copy(), rows[2], rows[3], rows[4])


@dataclass
class Judgement:
    """Per-probe verdicts and the numbers behind them (derivative units)."""

    passed: np.ndarray
    kink: np.ndarray
    numeric: np.ndarray
    analytic: np.ndarray
    error: np.ndarray
    tolerance: np.ndarray
    one_sided: tuple[np.ndarray, np.ndarray]


def judge(
    coarse: Differences,
    fine: Differences,
    f0: float,
    noise: float,
    rtol: float,
    atol: np.ndarray | float,
) -> Judgement:
    """Compare analytic and numeric slopes at two step sizes; see the module docstring."""
    e1 = coarse.numeric - coarse.analytic
    e2 = fine.numeric - fine.analytic
    slack = rtol * np.abs(fine.numeric) + atol + rtol * fine.a_abs / fine.width
    noise2 = 2.0 * noise / fine.width
    smooth_ok = np.abs(e2) <= 0.5 * np.abs(e1 - e2) + noise2 + slack

    s_plus = [(d.f_plus - f0) / d.w_plus for d in (coarse, fine)]
    s_minus = [(f0 - d.f_minus) / d.w_minus for d in (coarse, fine)]
    g_plus, g_minus = fine.a_plus / fine.w_plus, -fine.a_minus / fine.w_minus
    drift = np.abs(s_plus[0] - s_plus[1]) + np.abs(s_minus[0] - s_minus[1])
    noise1 = 2.0 * noise / np.minimum(fine.w_plus, fine.w_minus)
    gap = np.abs(s_plus[1] - s_minus[1])
    kink = gap > 4.0 * drift + 4.0 * noise1 + slack
    err_plus, err_minus = s_plus[1] - g_plus, s_minus[1] - g_minus
    kink_tol = drift + noise1 + slack
    between = (np.minimum(err_plus, err_minus) <= kink_tol) & (
        np.maximum(err_plus, err_minus) >= -kink_tol
    )
    kink_ok = kink & between & ~smooth_ok
    tol = 0.5 * np.abs(e1 - e2) + noise2 + slack
    error = np.where(kink_ok, 0.0, np.abs(e2))
    return Judgement(
        smooth_ok | kink_ok, kink_ok, fine.numeric, fine.analytic, error, tol, (s_plus[1], s_minus[1])
    )


def merge(first: Judgement, second: Judgement, where: np.ndarray) -> Judgement:
    """Replace the probes ``where`` (a bool mask over first) by ``second``'s verdicts."""
    parts = {}
    for name in ("passed", "kink", "numeric", "analytic", "error", "tolerance"):
        merged = getattr(first, name).copy()
        merged[where] = getattr(second, name)
        parts[name] = merged
    sides = []
    for a, b in zip(first.one_sided, second.one_sided):
        side = a.copy()
        side[where] = b
        sides.append(side)
    return Judgement(**parts, one_sided=(sides[0], sides[1]))
