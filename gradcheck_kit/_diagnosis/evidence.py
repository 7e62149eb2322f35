"""The evidence a diagnosis reads: one failing input's maps (probed elements, kinks left out),
and the named pattern it yields with its measured fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

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

    @classmethod
    def of(cls, report: InputReport) -> Evidence | None:
        """Probed elements, kinks left out: at a kink the numeric slope is not a gradient."""
        if report.numeric_map is None or report.analytic_map is None:
            return None
        probed = ~np.isnan(report.numeric_map)
        if report.kink_map is not None:
            probed &= ~report.kink_map
        failing = report.failing_map if report.failing_map is not None else np.zeros_like(probed)
        return cls(report.analytic_map[probed], report.numeric_map[probed], failing[probed], probed, report)

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
