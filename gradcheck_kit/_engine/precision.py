"""A layer's low-precision gradient against its own float64 gradient: a float32 path that loses
more than float32 rounding explains (a float16 accumulator, a dtype-specific branch) is a
``precision`` finding.

The allowance grows only where the measured rounding of the layer's own algorithm says so: the
precision model's allowance first, then the backward's measured linearity residual (its
rounding at eps(float64), scaled to the low dtype), then its jitter under ulp-level nudges (the
rounding of terms a cancelling gradient sums, invisible in its value).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._ground.backends import dtype_name, eps, is_floating, to_numpy
from .._result import Finding
from . import lowprec
from .evaluation import Evaluation
from .tolerances import ROUNDING_ULPS, precision_tolerance, smallest_normal


def precision_findings(ev: Evaluation) -> list[Finding]:
    """One finding per input whose float32 gradient strays from its float64 twin (float16 and
    bfloat16 ones: ``low_precision_verdicts``)."""
    return [
        f
        for i, pair in ev.pairs.items()
        if not lowprec.is_low(dtype_name(pair[0])) and (f := _compare(ev, i, *pair)) is not None
    ]


def low_precision_verdicts(ev: Evaluation) -> list[lowprec.LowVerdict]:
    """Each float16/bfloat16 gradient against the layer's own float64 one, under the measured
    rounding model of ``lowprec``."""
    verdicts = []
    for i, (low, high) in ev.pairs.items():
        sensitive = ev.sensitivity(i) if lowprec.is_low(dtype_name(low)) else None
        if sensitive is None:
            continue
        low_np, high_np = to_numpy(low).astype(np.float64), to_numpy(high).astype(np.float64)
        if low_np.shape != high_np.shape or sensitive.shape != high_np.shape:
            continue
        dtype = dtype_name(low)
        verdicts.append(
            lowprec.judge(
                ev.names[i], dtype, eps(dtype), low_np, high_np, sensitive, "its own float64 gradient"
            )
        )
    return verdicts


def _cancellation(ev: Evaluation, i: int, epsilon: float) -> np.ndarray | float:
    """Rounding a low-precision gradient carries when it cancels large terms.

    Such a gradient rounds like epsilon times its terms, not times itself, and neither its value
    nor its linearity in grad_output shows the terms. The float64 backward's jitter under an
    ulp-level nudge of the inputs does: rounding noise of eps(float64) times the terms. The same
    algorithm in ``epsilon`` rounds epsilon/eps(float64) times worse."""
    moved = ev.jitter(i)
    if moved is None or not moved.size:
        return 0.0
    return ROUNDING_ULPS * (moved + 0.1 * float(np.max(moved))) * epsilon / eps("float64")


def _run_dtype(ev: Evaluation, low: Any) -> str:
    """The precision the low-precision run may round to: the coarsest of its gradient's dtype and
    the floating inputs it was fed (a float32 input's gradient handed back in float64 may carry
    float32 rounding: the layer computed part of it in float32)."""
    dtypes = [dtype_name(low), *(dtype_name(x) for x in ev.calls.plan.inputs if is_floating(x))]
    return max(dtypes, key=eps)


def _compare(ev: Evaluation, i: int, low: Any, high: Any) -> Finding | None:
    low_np, high_np = to_numpy(low).astype(np.float64), to_numpy(high).astype(np.float64)
    if low_np.shape != high_np.shape or low_np.size == 0:
        return None
    run = _run_dtype(ev, low)
    epsilon = eps(run)
    allowed = precision_tolerance(max(epsilon, ev.forward_eps), high_np, smallest_normal(run))
    excess = np.abs(low_np - high_np) - allowed
    if (excess > 0).any():  # the same algorithm rounds ~eps(low)/eps(float64) times worse
        allowed = allowed + ROUNDING_ULPS * ev.rounding_scale(i) * epsilon / eps("float64")
        excess = np.abs(low_np - high_np) - allowed
    if (excess > 0).any():
        allowed = allowed + _cancellation(ev, i, epsilon)
        excess = np.abs(low_np - high_np) - allowed
    if not (excess > 0).any():
        return None
    k = np.unravel_index(int(np.argmax(excess)), excess.shape)
    where = tuple(int(v) for v in k)
    name = ev.names[i]
    label = dtype_name(low) if dtype_name(low) == run else f"{dtype_name(low)} (from {run} inputs)"
    return Finding(
        "precision",
        f"{label} gradient for {name} differs from the same layer's float64 gradient "
        f"beyond {run} rounding at {list(where)}: {low_np[k]:.6g} vs "
        f"{high_np[k]:.6g} (allowed ±{allowed[k]:.3g}); look for a low-precision "
        "accumulator or a dtype-specific branch",
        input=name,
        where=where,
        details={"low": float(low_np[k]), "float64": float(high_np[k]), "allowed": float(allowed[k])},
    )
