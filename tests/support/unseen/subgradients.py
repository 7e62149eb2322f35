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
