"""Where the error sits in one input: everywhere, or only some batch items, channels, filters,
a border band or a stride grid. Words for the report, computed from the failing mask."""

from __future__ import annotations

import numpy as np

from .._ground.geometry import along, spatial_axes
from .._result import InputReport
from .evidence import border_width


def describe(
    report: InputReport, *, first_input: bool, stride: int | None = None, pads: bool = False
) -> str | None:
    """One phrase such as ``only in batch items [1, 2]`` or ``everywhere``, or None."""
    if report.failing_map is None or report.numeric_map is None:
        return None
    failing, probed = report.failing_map, ~np.isnan(report.numeric_map)
    if not failing.any() or not probed.any():
        return None
    share = failing[probed].mean()
    subsets = [_axis_subset(failing, probed, a, _axis_name(a, failing.ndim, first_input)) for a in (0, 1)]
    parts = [p for p in subsets if p is not None]
    width = border_width(report, padded=pads)
    if width is not None:
        parts.append(f"only on the borders (width {width})")
    grid = _stride_grid(failing, probed, stride)
    if grid:
        parts.append(grid)
    if not parts:
        return "everywhere" if share >= 0.9 else f"in {share:.0%} of the probed elements"
    return ", ".join(parts)


def _axis_name(axis: int, ndim: int, first_input: bool) -> str:
    """The axis in words where the layout says it: (N, C, ...) data, (F, C, k...) 4-d+ weights.
    A 3-d weight may be a conv1d's (F, C, k) or a depthwise conv's (C, kh, kw): numbered."""
    if ndim >= 3 and first_input:
        return ("batch items", "channels")[axis]
    if ndim >= 4:
        return ("filters", "channels")[axis]
    if ndim == 3:
        return f"indices of axis {axis}"
    return ("rows", "columns")[axis]


def _axis_subset(failing: np.ndarray, probed: np.ndarray, axis: int, name: str) -> str | None:
    if failing.ndim <= axis or failing.shape[axis] < 2:
        return None
    other = tuple(k for k in range(failing.ndim) if k != axis)
    hit = failing.any(axis=other)
    seen = probed.any(axis=other)
    if hit.all() or not (seen & ~hit).any():
        return None
    indices = np.flatnonzero(hit).tolist()
    shown = indices if len(indices) <= 8 else [*indices[:8], "…"]
    return f"only in {name} {shown}"


def _stride_grid(failing: np.ndarray, probed: np.ndarray, stride: int | None) -> str | None:
    """Failures confined to (or excluded from) the positions that are multiples of a stride."""
    axes = spatial_axes(failing.ndim)
    if not axes:
        return None
    if not stride or stride < 2:
        return None  # a grid the layer does not have would be a coincidence of a small case
    for s in [stride]:
        on = np.ones(failing.shape, dtype=bool)
        for k in axes:
            index = np.arange(failing.shape[k]) % s == 0
            on &= along(index, k, failing.ndim)
        if not (probed & on).any() or not (probed & ~on).any():
            continue
        if failing[on & probed].all() and not failing[~on & probed].any():
            return f"only on the stride-{s} grid"
        if failing[~on & probed].all() and not failing[on & probed].any():
            return f"only off the stride-{s} grid"
    return None
