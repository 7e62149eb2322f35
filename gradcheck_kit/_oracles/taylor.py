"""Taylor test: a step-free second opinion on a gradient (pyadjoint's ``taylor_test`` idea).

For a direction d, the residual r(h) = |F(x + h d) - F(x) - h <g, d>| shrinks like h^2 when g is
the gradient and only like h when it is not. Halving h and reading off log2(r(h) / r(h/2))
gives the observed order: ~2 confirms the gradient, ~1 condemns it, whatever the step size.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .finite_diff import Objective, step_along


@dataclass
class TaylorResult:
    steps: list[float]
    residuals: list[float]
    orders: list[float]
    noise: float

    @property
    def order(self) -> float | None:
        """Median observed order over the halvings that stayed above the noise floor."""
        usable = [o for o, r in zip(self.orders, self.residuals[1:]) if r > 10 * self.noise]
        return float(np.median(usable)) if usable else None

    @property
    def consistent(self) -> bool | None:
        """True: order ~2 (gradient right); False: order ~1 (wrong); None: lost in noise."""
        order = self.order
        return None if order is None else order > 1.6

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "residuals": self.residuals,
            "orders": self.orders,
            "order": self.order,
        }


def taylor_test(
    objective: Objective,
    direction: Mapping[int, Any],
    gradients64: Mapping[int, Any],
    noise: float,
    *,
    first_step: float = 1.0,
    halvings: int = 6,
) -> TaylorResult:
    """Residuals of the first-order Taylor expansion along ``direction`` for shrinking h."""
    steps, residuals = [], []
    for k in range(halvings + 1):
        h = first_step * 0.5**k
        change, predicted, _ = step_along(objective, direction, h, gradients64)
        residuals.append(abs(change - predicted))
        steps.append(h)
    orders = [
        float(np.log2(r0 / r1)) if r0 > 0 and r1 > 0 else float("nan")
        for r0, r1 in itertools.pairwise(residuals)
    ]
    return TaylorResult(steps, residuals, orders, noise)
