"""The evidence a diagnosis reads: one failing input's maps (probed elements, kinks left out),
and the named pattern it yields with its measured fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._ground.geometry import band, largest, spatial_axes
from .._result import InputReport

FIT = 1e-3  # a map fit must explain the analytic gradient to 0.1%


@dataclass
class Pattern:
    name: str
    message: str
    fit: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "message": self.message, "fit": self.fit, "details": self.details}


@dataclass
class Evidence:
    """The probed part of one input's maps, flattened, and the whole maps for structure."""

    analytic: np.ndarray
    numeric: np.ndarray
    failing: np.ndarray
    probed: np.ndarray
    report: InputReport
    fit: float = FIT  # how closely a map fit must explain the analytic gradient

    @classmethod
    def of(cls, report: InputReport) -> Evidence | None:
        """Probed elements, kinks left out: at a kink the numeric slope is not a gradient."""
        if report.numeric_map is None or report.analytic_map is None:
            return None
        probed = ~np.isnan(report.numeric_map)
        if report.kink_map is not None:
            probed &= ~report.kink_map
        failing = report.failing_map if report.failing_map is not None else np.zeros_like(probed)
        # a low-precision gradient can fit a pattern only to its own rounding (``evidence["fit"]``)
        fit = max(FIT, float(report.evidence.get("fit", FIT)))
        return cls(
            report.analytic_map[probed], report.numeric_map[probed], failing[probed], probed, report, fit
        )

    @property
    def complete(self) -> bool:
        """Every element probed, except kinks (whose numeric value stands in as NaN)."""
        kinks = self.report.kink_map if self.report.kink_map is not None else False
        return bool((self.probed | kinks).all())

    def maps(self) -> tuple[np.ndarray, np.ndarray]:
        """Analytic and numeric maps with kinks set to agree (they carry no evidence)."""
        A, N = self.report.analytic_map, self.report.numeric_map
        assert A is not None and N is not None  # Evidence.of checked them
        N = N.copy()
        N[~self.probed] = A[~self.probed]
        return A, N


def relative_residual(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.linalg.norm(a))
    return float(np.linalg.norm(a - b)) / scale if scale > 0 else float("inf")


def pct(residual: float) -> str:
    return f"{100 * (1 - residual):.2f}%"


def padded(params: Any) -> bool:
    """Whether the layer pads its input (CS231n's conv_param dicts included)."""
    return largest(params, "padding", "pad") > 0


def border_width(report: InputReport, *, padded: bool = False) -> int | None:
    """The narrowest border band holding every failure, when the interior is probed and clean.
    Borders are those of the spatial axes of N x C x spatial inputs; a 2-d input's rows and
    columns count as an (H, W) image only for a ``padded`` layer: in a (batch, classes) matrix
    failures along its edges are a coincidence of a small case."""
    if report.failing_map is None or report.numeric_map is None:
        return None
    failing, probed = report.failing_map, ~np.isnan(report.numeric_map)
    if failing.ndim == 2 and not padded:
        return None
    axes = (0, 1) if failing.ndim == 2 else spatial_axes(failing.ndim)
    if not axes or not failing.any():
        return None
    for width in range(1, max(failing.shape[k] for k in axes) // 2):
        inside = band(failing.shape, axes, width)
        if not (failing & ~inside).any():
            interior = probed & ~inside
            return width if interior.any() and failing[inside & probed].mean() >= 0.25 else None
    return None
