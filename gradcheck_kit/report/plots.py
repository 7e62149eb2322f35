"""Pictures for the HTML report, drawn with matplotlib's object API on the Agg canvas (no pyplot,
no global backend switch) and returned as PNG bytes. matplotlib is imported on first use only;
``available()`` says whether it can be.

- ``error_heatmap``: |analytic - numeric| over the input's elements, log-scaled, unprobed
  elements grey, failing ones outlined; tensors of 3+ dims are drawn as a grid of their last two
  dims (a padding bug shows as a frame around every panel).
- ``taylor_plot``: the Taylor remainder |F(x + h d) - F(x) - h <g, d>| against h on log-log
  axes with reference slopes 1 (a wrong gradient) and 2 (a right one).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

MAX_PANELS = 12
PANEL_INCHES = 3.0
DPI = 96


def available() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def panels(values: np.ndarray) -> tuple[list[tuple[str, np.ndarray]], int]:
    """(index label, 2-D slice) for the leading indices of ``values`` (at most ``MAX_PANELS``),
    and how many were left out. 1-D arrays become one row, 0-D ones a single cell."""
    values = np.asarray(values, dtype=float)
    if values.ndim < 2:
        return [("", values.reshape(1, -1))], 0
    lead = values.shape[:-2]
    indices = list(np.ndindex(*lead)) if lead else [()]
    shown = [(_label(i), values[i]) for i in indices[:MAX_PANELS]]
    return shown, len(indices) - len(shown)


def _label(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in index) + ", :, :]" if index else ""


def error_heatmap(name: str, error_map: Any, failing_map: Any = None) -> bytes:
    """A PNG of log10 |error| over the elements of input ``name``; failing elements outlined."""
    errors = np.abs(np.asarray(error_map, dtype=float))
    failing = np.zeros(errors.shape, bool) if failing_map is None else np.asarray(failing_map, dtype=bool)
    shown, left_out = panels(errors)
    marks, _ = panels(failing.astype(float))
    logs = np.log10(np.where(errors > 0, errors, np.nan))
    low, high = _limits(logs)
    columns = min(len(shown), 4)
    rows = math.ceil(len(shown) / columns)
    aspect = shown[0][1].shape[0] / max(shown[0][1].shape[1], 1)
    figure = _figure(PANEL_INCHES * columns + 1.0, max(1.4, PANEL_INCHES * aspect) * rows + 0.6)
    axes = figure.subplots(rows, columns, squeeze=False)
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(shown):
            ax.set_visible(False)
            continue
        image = _panel(ax, shown[k], marks[k][1], low, high, name)
    if image is not None:
        figure.colorbar(image, ax=axes, label="log10 |analytic − numeric|", shrink=0.9)
    more = f" (+{left_out} more panels)" if left_out else ""
    figure.suptitle(f"where the error in {name} sits{more}", fontsize=10)
    return _png(figure)


def _limits(logs: np.ndarray) -> tuple[float, float]:
    finite = logs[np.isfinite(logs)]
    if finite.size == 0:
        return -16.0, 0.0
    low, high = float(finite.min()), float(finite.max())
    return (low - 0.5, high + 0.5) if high - low < 1e-9 else (low, high)


def _panel(
    ax: Any, panel: tuple[str, np.ndarray], failing: np.ndarray, low: float, high: float, name: str
) -> Any:
    from matplotlib import colormaps

    label, values = panel
    cmap = colormaps["magma"].with_extremes(bad="#d0d0d0")
    logs = np.log10(np.where(values > 0, values, np.nan))
    logs = np.where(np.isnan(values), np.nan, np.where(values > 0, logs, low))  # exact zeros: darkest
    image = ax.imshow(np.ma.masked_invalid(logs), cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    rows, cols = np.nonzero(failing > 0.5)
    ax.scatter(cols, rows, marker="s", s=40, facecolors="none", edgecolors="#00e5ff", linewidths=0.8)
    ax.set_title(f"{name}{label}", fontsize=8)
    ax.tick_params(labelsize=7)
    return image


def taylor_plot(name: str, steps: Any, residuals: Any, orders: Any = None) -> bytes:
    """A PNG of the Taylor remainder against the step on log-log axes with slopes 1 and 2
    drawn through the largest step; the observed orders are listed in the title."""
    h = np.asarray(steps, dtype=float)
    r = np.asarray(residuals, dtype=float)
    keep = (h > 0) & (r > 0) & np.isfinite(r)
    figure = _figure(4.6, 3.4)
    ax = figure.subplots()
    ax.loglog(h[keep], r[keep], "o-", color="#c0392b", label="remainder")
    if keep.any():
        h0, r0 = h[keep][0], r[keep][0]
        for slope, style in ((1, "--"), (2, ":")):
            ax.loglog(h, r0 * (h / h0) ** slope, style, color="#555555", label=f"slope {slope}")
    ax.set_xlabel("step h")
    ax.set_ylabel("|F(x+hd) − F(x) − h⟨g,d⟩|")
    shown = [f"{o:.2f}" for o in (orders or []) if o is not None and math.isfinite(o)]
    ax.set_title(f"Taylor test of {name}: orders {', '.join(shown) or '-'}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _png(figure)
