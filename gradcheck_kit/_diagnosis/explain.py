"""Attach the diagnosis to a failing input report: its likely cause, where the error sits, the
named patterns with their fits, and the Taylor test's observed orders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._engine.elementwise import Setup
from .._result import InputReport
from . import patterns as diagnose
from . import variants as hypotheses
from . import where as localize


def explain(report: InputReport, setup: Setup, *, first_input: bool, params: Mapping[str, Any]) -> None:
    patterns = diagnose.diagnose(report, setup, first_input=first_input)
    pads = diagnose.padded(params)
    where = localize.describe(report, first_input=first_input, stride=_stride(params), pads=pads)
    taylor = hypotheses.taylor_orders(setup, report.index, report.failing_map)
    report.taylor_orders = [round(o, 3) for o in taylor.orders]
    report.evidence["taylor"] = taylor.to_dict()
    report.evidence["patterns"] = [p.to_dict() for p in patterns]
    report.evidence["where"] = where
    if patterns:
        report.cause = patterns[0].message
    elif where:
        report.cause = f"no known bug pattern fits; the error sits {where}"
    if where and patterns:
        report.note = f"error {where}" if report.note is None else f"{report.note}; error {where}"


def _stride(params: Mapping[str, Any]) -> int | None:
    stride = params.get("stride")
    if isinstance(stride, int):
        return stride
    if isinstance(stride, (tuple, list)) and stride and all(isinstance(s, int) for s in stride):
        return max(stride)
    return None
