"""A float16/bfloat16 gradient judged against a high-precision one as tightly as its rounding
allows.

Finite differences cannot see a 5% error in bfloat16 (their own steps are that coarse), so a
low-precision gradient ``g_low`` is compared with a high-precision gradient ``g_high`` at the same
point and grad_output: the layer's own float64 backward (itself checked against finite
differences), or a torch reference's float64 VJP. What a correct low-precision implementation
may differ by is *measured*: rounding perturbs every quantity a kernel computes by about eps of
its dtype, and the gradient moves by how sensitive it is to such perturbations. Nudging the
inputs and grad_output of the high-precision backward by a small relative amount with random
signs measures that sensitivity ``S`` per element, cancellation included (layer norm's dx
subtracts terms far larger than itself). The rounding scale is then ``eps_low * (S + S_max/10)``.

Three verdicts, each enough to fail:

- element-wise: no element's error beyond ELEMENT_ULPS rounding scales (a missing term, a sign
  flipped on some elements, a transposed matrix);
- in aggregate: the root-mean-square error within AGGREGATE_ULPS rounding scales;
- a bias: the error's component along ``g_high`` (``g_low ≈ (1 + beta) g_high``) beyond
  BIAS_ULPS epsilons plus its statistical uncertainty; rounding does not scale a whole gradient,
  so a 2% bias over 4,000 elements fails even where each element is within rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._ground.backends import dtype_name, eps
from .._ground.draws import signed_magnitudes
from .._result import Finding
from .tolerances import UNDERFLOW_UNITS, smallest_normal

LOW_DTYPES = ("float16", "bfloat16")
SENSITIVITY_NUDGE = 2.0**-20  # relative: far above float64 rounding, deep in the linear regime
SENSITIVITY_NUDGES = 2  # backward calls measuring it: the largest response of two random nudges
ELEMENT_ULPS = 16.0  # an element may be off by this many rounding scales
AGGREGATE_ULPS = 4.0  # the root-mean-square error by this many
BIAS_ULPS = 2.0  # a whole gradient may be scaled by 1 +- this many epsilons
BIAS_SIGMAS = 8.0  # ... plus this many standard errors of the fitted scale


def is_low(dtype: str) -> bool:
    return dtype in LOW_DTYPES


def low_epsilon(*dtypes: str) -> float:
    """The coarsest epsilon among the dtypes a gradient was computed or rounded in."""
    return max(eps(d) for d in dtypes)


def sensitivity(
    backward: Callable[[list[Any], list[Any]], list[np.ndarray | None]],
    inputs: Sequence[Any],
    dy: Sequence[Any | None],
    usable: Sequence[int],
    rng: np.random.Generator,
    backend: Any,
) -> dict[int, np.ndarray]:
    """Per usable input, max over SENSITIVITY_NUDGES nudges of |g(x', dy') - g(x, dy)| / nudge,
    x' and dy' every element moved by SENSITIVITY_NUDGE relative, random signs and magnitudes.
    ``backward(inputs, dy)`` gives the high-precision gradients as float64 host arrays."""

    def nudged(x: Any) -> Any:
        moved = backend.float64(x)
        moved *= 1 + SENSITIVITY_NUDGE * backend.from_numpy(signed_magnitudes(rng, tuple(x.shape)))
        return moved

    base = backward(list(inputs), list(dy))
    worst: dict[int, np.ndarray] = {}
    for _ in range(SENSITIVITY_NUDGES):
        point = [nudged(x) if k in usable else x for k, x in enumerate(inputs)]
        moved = backward(point, [None if d is None else nudged(d) for d in dy])
        for k, i in enumerate(usable):
            a, b = base[k], moved[k]
            if a is None or b is None or a.shape != b.shape:
                continue
            change = np.abs(b - a) / SENSITIVITY_NUDGE
            worst[i] = np.maximum(worst[i], change) if i in worst else change
    return worst


@dataclass
class LowVerdict:
    """A low-precision gradient against its high-precision twin."""

    name: str
    dtype: str
    epsilon: float
    low: np.ndarray
    high: np.ndarray
    scale: np.ndarray  # the rounding scale of a correct implementation, per element
    failing: np.ndarray  # elements beyond ELEMENT_ULPS scales
    ratio: float  # the worst element's error in rounding scales
    rms_ratio: float  # the root-mean-square error in rounding scales
    bias: float  # beta in low ≈ (1 + beta) high
    bias_allowed: float
    against: str  # what the high-precision gradient came from

    @property
    def passed(self) -> bool:
        return (
            not self.failing.any()
            and self.rms_ratio <= AGGREGATE_ULPS
            and abs(self.bias) <= self.bias_allowed
        )

    @property
    def worst(self) -> tuple[int, ...]:
        ratio = np.abs(self.low - self.high) / self.scale
        return (
            tuple(int(v) for v in np.unravel_index(int(np.argmax(ratio)), ratio.shape)) if ratio.size else ()
        )


def judge(
    name: str,
    dtype: str,
    epsilon: float,
    low: np.ndarray,
    high: np.ndarray,
    sensitive: np.ndarray,
    against: str,
) -> LowVerdict:
    """The three verdicts for ``low`` against ``high`` (host float64 arrays of one shape)."""
    peak = float(np.max(sensitive)) if sensitive.size else 0.0
    scale = epsilon * (sensitive + 0.1 * peak) + UNDERFLOW_UNITS * smallest_normal(dtype)
    scale = np.maximum(scale, np.finfo(np.float64).tiny)
    error = low - high
    ratios = np.abs(error) / scale
    norm = float(np.linalg.norm(high))
    bias = float(error.reshape(-1) @ high.reshape(-1)) / norm**2 if norm > 0 else 0.0
    # the scale a correct gradient's noise leaves undetermined: |noise| / |high| / sqrt(n)
    spread = float(np.linalg.norm(scale)) / (norm * np.sqrt(max(high.size, 1))) if norm > 0 else np.inf
    return LowVerdict(
        name=name,
        dtype=dtype,
        epsilon=epsilon,
        low=low,
        high=high,
        scale=scale,
        failing=ratios > ELEMENT_ULPS,
        ratio=float(ratios.max()) if ratios.size else 0.0,
        rms_ratio=float(np.sqrt(np.mean(ratios**2))) if ratios.size else 0.0,
        bias=bias,
        bias_allowed=BIAS_ULPS * epsilon + BIAS_SIGMAS * spread,
        against=against,
    )


def finding(verdict: LowVerdict, cause: str | None = None) -> Finding:
    """The ``precision`` finding of a failed verdict, in words: how many times what rounding of a
    correct implementation explains, where, and the likely cause when the diagnosis names one."""
    v, where = verdict, verdict.worst
    if v.failing.any() or v.rms_ratio > AGGREGATE_ULPS:
        how = (
            f"its error against {v.against} is {v.ratio:.3g}× what {v.dtype} rounding of a correct "
            f"implementation explains ({int(v.failing.sum())} of {v.low.size} elements beyond "
            f"{ELEMENT_ULPS:g}×; root-mean-square {v.rms_ratio:.3g}×)"
        )
    else:
        how = (
            f"it is {1 + v.bias:.5g}× {v.against} overall: a bias of {v.bias:+.2%} over {v.low.size} "
            f"elements, where {v.dtype} rounding explains ±{v.bias_allowed:.2%}"
        )
    at = (
        f"; worst at {list(where)}: {v.low[where]:.6g} vs {v.high[where]:.6g}"
        if where or v.low.ndim == 0
        else ""
    )
    message = f"{v.dtype} gradient for {v.name}: {how}{at}"
    if cause:
        message += f"; likely cause: {cause}"
    return Finding(
        "precision",
        message,
        input=v.name,
        where=where,
        details={
            "dtype": v.dtype,
            "ratio": v.ratio,
            "rms_ratio": v.rms_ratio,
            "bias": v.bias,
            "bias_allowed": v.bias_allowed,
            "failing": int(v.failing.sum()),
            "against": v.against,
        },
    )


def computed_in(gradient: Any, grid: str) -> str:
    """The precision a gradient was computed in: its dtype's, or its input's grid if coarser."""
    return max((dtype_name(gradient), grid), key=eps)
