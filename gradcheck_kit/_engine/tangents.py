"""Forward mode: a layer's Jacobian-vector product judged along random tangents.

Along a direction v the objective F(x) = Σ <u, f(x)> (u: grad_output) changes at the rate
<u, J v>. The JVP predicts that rate directly; backward predicts it as <Jᵀu, v>. So one JVP
call per direction gives two tests:

* **against finite differences**, with the projection judge itself (two step sizes, measured
  finite-difference error, kinks, refinements): the checked gradient g = Jᵀu is corrected along
  v alone, g_v = g + (<u, J v> - <g, v>) v / |v|², so that the judge's prediction <g_v, s v> is
  the JVP's and every other component stays the checked one's;
* **the dot-product test** <u, J v> = <Jᵀu, v>, free of finite differences and so as tight as
  rounding allows: a jvp and a backward that disagree (one of them 1.0001× off, or a term only
  one of them has) are caught far below finite-difference resolution. The allowance is the
  rounding both sides measurably carry: each one's residual from linearity, plus a few ulps of
  the sums' magnitudes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._ground.backends import Backend, to_numpy
from .._oracles.finite_diff import Judgement
from .descend import judge_directions
from .setup import Setup
from .tolerances import REPEAT_ULPS, ROUNDING_ULPS, summation_factor


@dataclass
class Pairing:
    """Σ over outputs of <u, t> for output tangents t, and Σ <|u|, |t|> (the rounding scale)."""

    value: float
    magnitude: float


def pair_outputs(backend: Backend, u: Sequence[Any | None], tangents: Sequence[Any]) -> Pairing:
    """<u, J v> from the JVP's output tangents (outputs without grad_output do not count)."""
    value = magnitude = 0.0
    for d, t in zip(u, tangents):
        if d is None or t is None:
            continue
        t64 = backend.as_float64(t)
        value += backend.dot(d, t64)
        magnitude += backend.dot(backend.xp.abs(d), backend.xp.abs(t64))
    return Pairing(value, magnitude)


def pair_inputs(setup: Setup, direction: Mapping[int, Any]) -> Pairing:
    """<Jᵀu, v> from the checked gradients, and its rounding scale."""
    b = setup.backend
    value = sum(b.dot(setup.gradients64[i], d) for i, d in direction.items())
    magnitude = sum(b.dot(b.xp.abs(setup.gradients64[i]), b.xp.abs(d)) for i, d in direction.items())
    return Pairing(float(value), float(magnitude))


def judge_tangent(setup: Setup, direction: Mapping[int, Any], predicted: float) -> Judgement:
    """The JVP's rate ``predicted`` along ``direction`` against finite differences."""
    b = setup.backend
    along = pair_inputs(setup, direction).value
    norm = sum(b.dot(d, d) for d in direction.values())
    shift = (predicted - along) / norm if norm > 0 else 0.0
    corrected = {i: g + shift * direction[i] if i in direction else g for i, g in setup.gradients64.items()}
    host = {i: np.asarray(to_numpy(g), dtype=np.float64) for i, g in corrected.items()}
    variant = dataclasses.replace(setup, gradients64=corrected, host_gradients=host, origin=None)
    return judge_directions(variant, [dict(direction)], list(direction))


def dot_tolerance(jvp: Pairing, vjp: Pairing, jvp_rounding: float, vjp_rounding: float, n: int) -> float:
    """How far <u, J v> and <Jᵀu, v> may differ by rounding alone: the measured residuals of
    each side's linearity (``*_rounding``, already paired with |u| and |v|) with a safety
    factor, plus REPEAT_ULPS of float64 ulps of both sums' magnitudes (two orders of summing
    the same bilinear form)."""
    measured = ROUNDING_ULPS * (jvp_rounding + vjp_rounding)
    modelled = REPEAT_ULPS * np.finfo(np.float64).eps * summation_factor(n) * (jvp.magnitude + vjp.magnitude)
    return float(measured + modelled)


def linearity_residual(backend: Backend, u: Sequence[Any | None], parts: Sequence[Sequence[Any]]) -> float:
    """Σ <|u|, |J v1 + J v2 - J (v1 + v2)|>: the JVP's rounding, paired with u (``parts``: the
    output tangents for v1, v2 and v1 + v2)."""
    first, second, both = parts
    total = 0.0
    for d, a, c, s in zip(u, first, second, both):
        if d is None:
            continue
        residual = backend.as_float64(a) + backend.as_float64(c) - backend.as_float64(s)
        total += backend.dot(backend.xp.abs(d), backend.xp.abs(residual))
    return total
