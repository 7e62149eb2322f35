"""A verdict's numbers turned into an input's report: the element maps (NaN where an element
was not probed), the worst element, max absolute and relative errors."""

from __future__ import annotations

import numpy as np

from .._oracles.finite_diff import Judgement
from .._result import InputReport


def ratio(error: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """error / tolerance, a zero tolerance counting as the smallest positive one."""
    return error / np.maximum(tolerance, 1e-300)


def input_report(
    name: str, i: int, mode: str, index: np.ndarray, verdict: Judgement, analytic: np.ndarray
) -> InputReport:
    """The report of input ``name`` (number i) whose elements ``index`` (flat) got ``verdict``;
    ``analytic`` is its whole analytic gradient."""
    report = InputReport(name, i, analytic.shape, "", mode, bool(verdict.passed.all()))
    report.checked = index.size
    report.kinks = int(verdict.kink.sum())
    report.failing = int((~verdict.passed).sum())
    fill_worst(report, verdict, index, analytic.shape)
    attach_maps(report, analytic, index, verdict)
    return report


def attach_maps(report: InputReport, analytic: np.ndarray, index: np.ndarray, verdict: Judgement) -> None:
    """Element maps over the input's shape from ``verdict`` on the flat elements ``index``."""
    shape = analytic.shape

    def full(values: np.ndarray) -> np.ndarray:
        out = np.full(int(np.prod(shape)), np.nan)
        out[index] = values
        return out.reshape(shape)

    report.numeric_map = full(verdict.numeric)
    report.error_map = full(verdict.error)
    report.tolerance_map = full(verdict.tolerance)
    report.moved_map = full(verdict.moved)
    report.failing_map = full(~verdict.passed) == 1.0
    report.kink_map = full(verdict.kink) == 1.0
    report.analytic_map = analytic.copy()


def relative_error(error: np.ndarray, numeric: np.ndarray) -> float:
    """The largest error relative to the numeric gradient (elements near 0 measured against a
    thousandth of its peak); inf when the numeric gradient is 0 everywhere and the error is not:
    a relative error of 1e303 would only hide that."""
    scale = float(np.max(np.abs(numeric))) if numeric.size else 0.0
    if scale == 0.0:
        return float("inf") if float(np.max(error, initial=0.0)) > 0 else 0.0
    return float(np.max(error / np.maximum(np.abs(numeric), 1e-3 * scale)))


def fill_worst(
    report: InputReport, verdict: Judgement, index: np.ndarray | None, shape: tuple[int, ...]
) -> None:
    if verdict.error.size == 0:
        return
    worst = ratio(verdict.error, verdict.tolerance)
    k = int(np.argmax(worst)) if not verdict.passed.all() else int(np.argmax(verdict.error))
    report.max_abs_err = float(verdict.error.max())
    report.max_rel_err = relative_error(verdict.error, verdict.numeric)
    report.numeric = float(verdict.numeric[k])
    report.analytic = float(verdict.analytic[k])
    report.tolerance = float(verdict.tolerance[k])
    if index is not None and shape:
        report.worst_index = tuple(int(v) for v in np.unravel_index(int(index[k]), shape))
    elif index is not None:
        report.worst_index = ()
