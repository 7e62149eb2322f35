"""Error signatures seen in real code that no transform of the gradient explains: a gradient
backward never wrote, an input the forward ignores, and an error constant along (or
proportional to the input normalized along) one axis, a normalization's missing mean term.
Each is named only when the maps can tell it apart: enough elements, every one probed."""

from __future__ import annotations

import numpy as np

from .evidence import Evidence, Pattern, pct, relative_residual

AXIS_MIN = 3  # an axis shorter than this cannot show that an error is constant along it


def zero_maps(ev: Evidence) -> list[Pattern]:
    """The analytic gradient is exactly 0 everywhere, or the numeric one is 0 on every probed
    element (within its tolerance) while the analytic one is not."""
    report = ev.report
    analytic = report.analytic_map
    if analytic is not None and not np.any(analytic) and ev.failing.any():
        return [
            Pattern(
                "gradient_never_written",
                "backward never writes this gradient: the analytic gradient is 0 everywhere while the "
                "numeric one is not (the array returned is never filled in, or another one was updated)",
                1.0,
            )
        ]
    tolerance = report.tolerance_map[ev.probed] if report.tolerance_map is not None else None
    if tolerance is None or ev.numeric.size < min(4, analytic.size if analytic is not None else 4):
        return []
    if np.all(np.abs(ev.numeric) <= tolerance) and np.any(ev.analytic):
        return [
            Pattern(
                "forward_ignores_input",
                f"the forward ignores this input: the numeric gradient is 0 on all {ev.numeric.size} "
                "probed elements while the analytic one is not (the input never reaches the output, "
                "or a copy made before it was set is used)",
                1.0,
            )
        ]
    return []


def normalized_axis(ev: Evidence, values: np.ndarray, first_input: bool) -> list[Pattern]:
    """analytic - numeric constant along an axis (a mean over it left out: batch norm's
    mean(dy) over the batch, layer norm's over the features), or proportional to the input
    normalized along it (the x̂ · mean(dy · x̂) term). A 1-d input counts only as the layer's
    first (a normalized vector): a parameter vector's own x̂ means nothing."""
    if not ev.complete or values.shape != ev.report.analytic_map.shape:  # type: ignore[union-attr]
        return []
    if values.ndim < 2 and not first_input:
        return []
    A, N = ev.maps()
    error = A - N
    for axis in range(error.ndim):
        if error.shape[axis] < AXIS_MIN or not _others_vary_or_alone(error, axis, ev.fit):
            continue
        constant = np.broadcast_to(error.mean(axis=axis, keepdims=True), error.shape)
        if relative_residual(error, constant) <= 10 * ev.fit:
            return [_pattern("missing_mean_term", axis, "the same for every element", error, constant)]
        xhat = _normalized(values, axis)
        fitted = (
            xhat * (error * xhat).sum(axis=axis, keepdims=True) / (xhat * xhat).sum(axis=axis, keepdims=True)
        )
        if np.all(np.isfinite(fitted)) and relative_residual(error, fitted) <= 10 * ev.fit:
            return [_pattern("missing_normalized_term", axis, "proportional to x̂", error, fitted)]
    return []


def _others_vary_or_alone(error: np.ndarray, axis: int, fit: float) -> bool:
    """A constant error along ``axis`` says something only if it is not one number everywhere
    (an additive offset, which the linearity contract names), unless ``axis`` is the only one."""
    if all(n == 1 for k, n in enumerate(error.shape) if k != axis):
        return True
    means = error.mean(axis=axis)
    return relative_residual(means.reshape(-1), np.full(means.size, means.mean())) > 10 * fit


def _normalized(values: np.ndarray, axis: int) -> np.ndarray:
    centred = values - values.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred / np.sqrt((centred**2).mean(axis=axis, keepdims=True))


def _pattern(name: str, axis: int, how: str, error: np.ndarray, fitted: np.ndarray) -> Pattern:
    residual = relative_residual(error, fitted)
    term = "a mean over that axis" if name == "missing_mean_term" else "the x̂ · mean(dy · x̂) term"
    return Pattern(
        name,
        f"analytic - numeric is {how} along axis {axis} (fit {pct(residual)}): {term} is missing "
        "from the backward (as in batch/layer norm, whose gradient subtracts the mean over the "
        "normalized axis)",
        1 - residual,
        {"axis": axis},
    )
