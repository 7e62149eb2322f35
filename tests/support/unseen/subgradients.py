"""Ground truth at kinks and ties, where autograd returns one subgradient of many: a gradient is
right when it lies in the subdifferential. Each test returns (inside?, how far outside)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .specimen import Array, Subgradient

# x -> (lowest, highest) slope of the function at each element: equal away from kinks
SlopeBounds = Callable[[Array], tuple[Array, Array]]


def elementwise_subgradient(bounds: SlopeBounds) -> Subgradient:
    """An element-wise function: gradient / dy must lie within the slope bounds at each x."""

    def inside(inputs: list[Array], grads: list[Array], dy: Array) -> tuple[bool, float]:
        x = inputs[0].astype(np.float64)
        slope = np.asarray(grads[0], np.float64) / dy
        low, high = bounds(x)
        tolerance = 1e-6 * max(1.0, np.abs(high).max())
        outside = np.maximum(low - slope, slope - high).max()
        return outside <= tolerance, max(outside, 0.0)

    return inside


def max_subgradient(inputs: list[Array], grads: list[Array], dy: Array) -> tuple[bool, float]:
    """``sum_r dy_r max_j x_rj``: row r's gradient is dy_r times a point of the simplex over the
    row's maxima (weights >= 0 on tied maxima summing to 1, zero elsewhere)."""
    x, g = inputs[0].astype(np.float64), np.asarray(grads[0], np.float64)
    worst = 0.0
    for r in range(x.shape[0]):
        tied = x[r] == x[r].max()
        weights = g[r] / dy[r]
        off_max = np.abs(weights[~tied]).max(initial=0)
        worst = max(worst, off_max, abs(weights[tied].sum() - 1), max(0, -weights[tied].min()))
    return worst <= 1e-6, worst


def difference_subgradient(bounds: SlopeBounds, scale: Callable[[Array], float]) -> Subgradient:
    """``scale(p) * sum h(p - t)`` for an element-wise h: p's gradient / (dy scale) must lie
    within h's slope bounds at p - t, and t's must be its negation (p and t share each kink:
    shifting both by one amount leaves the loss unchanged)."""

    def inside(inputs: list[Array], grads: list[Array], dy: Array) -> tuple[bool, float]:
        p, t = (a.astype(np.float64) for a in inputs[:2])
        gp, gt = (np.asarray(g, np.float64) for g in grads[:2])
        step = dy * scale(p)
        slope, low, high = gp / step, *bounds(p - t)
        outside = max(np.maximum(low - slope, slope - high).max(), np.abs((gp + gt) / step).max())
        return outside <= 1e-6, max(outside, 0.0)

    return inside


def multiclass_hinge_subgradient(inputs: list[Array], grads: list[Array], dy: Array) -> tuple[bool, float]:
    """``dy / N sum_i sum_{j != y_i} max(0, x_ij - x_iy_i + 1)``: each wrong class's weight
    c_ij = g_ij N / dy is 1 above a zero margin, 0 below it and anywhere in [0, 1] on it, and
    the true class's weight is -sum_j c_ij (the row's gradient sums to zero)."""
    x, y = inputs[0].astype(np.float64), inputs[1]
    n = x.shape[0]
    c = np.asarray(grads[0], np.float64) * n / dy
    rows = np.arange(n)
    margins = x - x[rows, y][:, None] + 1
    low, high = (margins > 0) * 1.0, (margins >= 0) * 1.0
    low[rows, y], high[rows, y] = 0.0, 0.0
    wrong = c.copy()
    wrong[rows, y] = 0.0
    outside = max(np.maximum(low - wrong, wrong - high).max(), np.abs(c.sum(axis=1)).max())
    return outside <= 1e-6, max(outside, 0.0)


def maximum_subgradient(inputs: list[Array], grads: list[Array], dy: Array) -> tuple[bool, float]:
    """``maximum(a, b)``: where a > b all of dy goes to a, where b > a to b, and at a tie any
    split (c, 1 - c) dy with c in [0, 1]; never more than dy in all."""
    a, b = (x.astype(np.float64) for x in inputs[:2])
    ca, cb = (np.asarray(g, np.float64) / dy for g in grads[:2])
    low, high = (a > b) * 1.0, (a >= b) * 1.0
    outside = max(np.maximum(low - ca, ca - high).max(), np.abs(ca + cb - 1).max())
    return outside <= 1e-6, max(outside, 0.0)


def window_max_subgradient(width: int) -> Subgradient:
    """Max-pooling of a row's consecutive windows of ``width``: each window is a row of
    ``max_subgradient``'s (weights on its tied maxima summing to 1)."""

    def inside(inputs: list[Array], grads: list[Array], dy: Array) -> tuple[bool, float]:
        windows = [inputs[0].reshape(-1, width)]
        return max_subgradient(windows, [np.asarray(grads[0]).reshape(-1, width)], dy.reshape(-1))

    return inside
