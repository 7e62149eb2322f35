"""Piecewise-linear activations, judged by the subdifferential: hardtanh away from its kinks and
exactly on them (also checked element-wise), leaky ReLU and |x| with exact zeros, and ReLU at
values 1e-10 to 1e-8 from its kink (closer than any sane finite-difference step)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import FLOAT64, Array, Specimen, normal, plain
from .subgradients import SlopeBounds, elementwise_subgradient

# -- hardtanh: clip to [-1, 1] -------------------------------------------------------------------------


def hardtanh(x: Array) -> Array:
    return np.clip(x, -1, 1)


def hardtanh_backward(dy: Array, x: Array) -> tuple[Array]:
    return (dy * ((x > -1) & (x < 1)),)


def hardtanh_backward_closed_interval(dy: Array, x: Array) -> tuple[Array]:
    # slope 1 at the kinks themselves: inside [0, 1], a valid subgradient
    return (dy * ((x >= -1) & (x <= 1)),)


def hardtanh_backward_no_clip(dy: Array, x: Array) -> tuple[Array]:
    """BUG: dy passed through unclipped, the identity's gradient."""
    return (dy.copy(),)


def hardtanh_backward_lower_bound_only(dy: Array, x: Array) -> tuple[Array]:
    """BUG: clips below -1 only; the upper bound is forgotten."""
    return (dy * (x > -1),)


def hardtanh_slopes(x: Array) -> tuple[Array, Array]:
    inside = (np.abs(x) < 1).astype(float)
    kink = np.abs(x) == 1
    return np.where(kink, 0.0, inside), np.where(kink, 1.0, inside)


def clamp_reference(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, -1, 1)


def away_from_the_kinks(rng: np.random.Generator, dtype: Any) -> tuple[Array]:
    x = normal(4, 6, scale=1.5)(rng, dtype)
    x[np.abs(np.abs(x) - 1) < 0.05] = 0.3
    return (x,)


def on_the_kinks(rng: np.random.Generator, dtype: Any) -> tuple[Array]:
    """Every third value exactly -1 or 1."""
    x = normal(4, 6, scale=1.5)(rng, dtype)
    x.flat[::3] = rng.choice([-1.0, 1.0], size=x.flat[::3].shape)
    return (x,)


# -- leaky ReLU (slope 0.1 below 0) and |x|, with exact zeros ------------------------------------------

ALPHA = 0.1


def leaky_relu(x: Array) -> Array:
    return np.where(x > 0, x, ALPHA * x)


def leaky_relu_backward(dy: Array, x: Array) -> tuple[Array]:
    return (dy * np.where(x > 0, 1.0, ALPHA),)


def leaky_relu_backward_zero_at_0(dy: Array, x: Array) -> tuple[Array]:
    """BUG: slope 0 at x = 0, outside the subdifferential [alpha, 1]."""
    return (dy * np.where(x > 0, 1.0, np.where(x < 0, ALPHA, 0.0)),)


def leaky_relu_backward_slopes_swapped(dy: Array, x: Array) -> tuple[Array]:
    """BUG: alpha above 0 and 1 below."""
    return (dy * np.where(x > 0, ALPHA, 1.0),)


def leaky_relu_slopes(x: Array) -> tuple[Array, Array]:
    d = np.where(x > 0, 1.0, ALPHA)
    return np.where(x == 0, ALPHA, d), np.where(x == 0, 1.0, d)


def absolute(x: Array) -> Array:
    return np.abs(x)


def abs_backward(dy: Array, x: Array) -> tuple[Array]:
    return (dy * np.sign(x),)


def abs_backward_plus_one_at_0(dy: Array, x: Array) -> tuple[Array]:
    # slope +1 at 0: inside [-1, 1], a valid subgradient
    return (dy * np.where(x >= 0, 1.0, -1.0),)


def abs_backward_relu_mask(dy: Array, x: Array) -> tuple[Array]:
    """BUG: ReLU's mask, slope 0 instead of -1 for x < 0."""
    return (dy * (x > 0),)


def abs_slopes(x: Array) -> tuple[Array, Array]:
    return np.where(x == 0, -1.0, np.sign(x)), np.where(x == 0, 1.0, np.sign(x))


def with_zeros(rng: np.random.Generator, dtype: Any) -> tuple[Array]:
    """Every fourth value exactly 0."""
    x = normal(4, 6)(rng, dtype)
    x.flat[::4] = 0.0
    return (x,)


# -- ReLU within 1e-8 of its kink ----------------------------------------------------------------------


def relu(x: Array) -> Array:
    return np.maximum(x, 0)


def relu_backward(dy: Array, x: Array) -> tuple[Array]:
    return (dy * (x > 0),)


def relu_backward_threshold_1e6(dy: Array, x: Array) -> tuple[Array]:
    """BUG: a "numerically safe" x > 1e-6: slope 0 for 0 < x < 1e-6."""
    return (dy * (x > 1e-6),)


def relu_slopes(x: Array) -> tuple[Array, Array]:
    return np.where(x == 0, 0.0, (x > 0) * 1.0), np.where(x == 0, 1.0, (x > 0) * 1.0)


def near_the_kink(rng: np.random.Generator, dtype: Any) -> tuple[Array]:
    """Every fourth value +-10^u, u uniform in [-10, -8]."""
    x = normal(4, 6)(rng, dtype)
    x.flat[::4] = rng.choice([-1, 1], size=6) * 10.0 ** rng.uniform(-10, -8, size=6)
    return (x,)


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    def family(
        name: str,
        forward: Any,
        backwards: tuple[Any, ...],
        make: Any,
        reference: Any,
        slopes: SlopeBounds,
        **kw: Any,
    ) -> list[Specimen]:
        truth = elementwise_subgradient(slopes)
        return [plain(name, forward, b, make, reference, subgradient=truth, **kw) for b in backwards]

    found = []
    for b in (
        hardtanh_backward,
        hardtanh_backward_closed_interval,
        hardtanh_backward_no_clip,
        hardtanh_backward_lower_bound_only,
    ):
        found += family(
            "hardtanh_away", hardtanh, (b,), away_from_the_kinks, clamp_reference, hardtanh_slopes
        )
        found += family(
            "hardtanh_kinks",
            hardtanh,
            (b,),
            on_the_kinks,
            clamp_reference,
            hardtanh_slopes,
            dtypes=FLOAT64,
            elementwise=True,
        )
    leaky = (leaky_relu_backward, leaky_relu_backward_zero_at_0, leaky_relu_backward_slopes_swapped)
    found += family(
        "leaky_relu_zeros",
        leaky_relu,
        leaky,
        with_zeros,
        lambda x: torch.nn.functional.leaky_relu(x, ALPHA),
        leaky_relu_slopes,
    )
    found += family(
        "abs_zeros",
        absolute,
        (abs_backward, abs_backward_plus_one_at_0, abs_backward_relu_mask),
        with_zeros,
        torch.abs,
        abs_slopes,
    )
    found += family(
        "relu_near_kink",
        relu,
        (relu_backward, relu_backward_threshold_1e6),
        near_the_kink,
        torch.relu,
        relu_slopes,
        dtypes=FLOAT64,
    )
    return found
