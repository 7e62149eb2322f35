"""The error model: how far apart two numbers may be before it means a bug.

Nothing here is a bare "1e-5": every tolerance is a machine epsilon (of the dtype the layer
actually computes in) times a magnitude the check measured, times a small safety factor whose
reason is stated. Finite-difference error is not modelled here: it is *measured*, from the
disagreement between two step sizes (see ``oracles.finite_diff``).
"""

from __future__ import annotations

import math

import numpy as np

from .._ground.backends import eps as dtype_eps

# Rounding in a forward pass: each output carries a few ulps of its own magnitude, and
# <dy, y> sums them; 8 ulps of sum|dy*y| bounds that with room for moderate cancellation.
OBJECTIVE_ULPS = 8.0

# Analytic gradients are sums (over batch, space, filters): their rounding grows like the
# square root of the terms summed; 16 ulps of the tensor's largest gradient times sqrt(log2 n)
# covers pairwise/BLAS summation of up to ~1e8 terms.
ANALYTIC_ULPS = 16.0

# Repeated calls (determinism): cuDNN-style reordering of a large sum moves the result by a
# few ulps of the summed magnitudes; a race drops or doubles whole terms (>= 1e-3 relative).
REPEAT_ULPS = 64.0

# A measured rounding level (the spread of a linearity residual) times this bounds the error of
# the same computation with overwhelming probability.
ROUNDING_ULPS = 16.0


UNDERFLOW_UNITS = 16.0


def smallest_normal(dtype: str) -> float:
    """The smallest positive normal number of a floating dtype (0 for float64: never the limit)."""
    return {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126}.get(dtype, 0.0)


def step_fraction(grid_dtype: str) -> float:
    """Relative finite-difference step for values rounded to ``grid_dtype``.

    Central differences balance truncation (~h^2) and rounding (~eps/h) at h ~ eps^(1/3);
    twice that keeps rounding noise well below truncation, which we measure anyway.
    """
    return 2.0 * dtype_eps(grid_dtype) ** (1.0 / 3.0)


def input_scale(values: np.ndarray) -> float:
    """Typical magnitude of one input (its RMS), 1.0 for an all-zero input."""
    if values.size == 0:
        return 1.0
    rms = float(np.sqrt(np.mean(np.square(values, dtype=np.float64))))
    return rms if rms > 0 and math.isfinite(rms) else 1.0


def element_steps(values: np.ndarray, fraction: float) -> np.ndarray:
    """Per-element step: a fraction of the element's magnitude, never below the input's scale."""
    steps = np.abs(values)
    np.maximum(steps, input_scale(values), out=steps)
    steps *= fraction
    return steps


def objective_noise(eps: float, magnitude: float = 1.0) -> float:
    """Rounding noise of F(x) = sum <dy, y> given sum |dy * y| (``magnitude``)."""
    return OBJECTIVE_ULPS * eps * magnitude


def summation_factor(n: int) -> float:
    return math.sqrt(max(1.0, math.log2(max(n, 2))))


def analytic_slack(eps: float, gradient: np.ndarray) -> tuple[float, float]:
    """(rtol, atol) the analytic gradient's own rounding earns, from its dtype and magnitude."""
    rtol = ANALYTIC_ULPS * eps * summation_factor(gradient.size)
    peak = float(np.max(np.abs(gradient))) if gradient.size else 0.0
    return rtol, rtol * (peak if math.isfinite(peak) else 0.0)


def repeat_tolerance(eps: float, peak: float, n: int) -> float:
    """Largest difference two calls on identical inputs may show without being a race."""
    return REPEAT_ULPS * eps * summation_factor(n) * peak


def precision_tolerance(eps: float, reference: np.ndarray, tiny: float = 0.0) -> np.ndarray:
    """Per-element allowance for a low-precision gradient against its float64 twin.

    An element of a reduction carries rounding proportional to the terms summed, not to its own
    (possibly cancelled) value, so the tensor's peak magnitude enters alongside the element's.
    ``tiny`` is the low dtype's smallest normal number: terms below it underflow (a Gaussian's
    tail at 20 sigma is 0 in float32), so differences of a few such units are not precision bugs.
    """
    peak = float(np.max(np.abs(reference))) if reference.size else 0.0
    factor = REPEAT_ULPS * eps * summation_factor(reference.size)
    return factor * (np.abs(reference) + peak) + UNDERFLOW_UNITS * tiny
