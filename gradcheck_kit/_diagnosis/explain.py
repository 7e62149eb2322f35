"""Attach the diagnosis to a failing input report: its likely cause, where the error sits, the
named patterns with their fits, and the Taylor test's observed orders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._engine.setup import Setup
from .._ground.geometry import largest
from .._result import InputReport
from . import patterns, variants, where
from .evidence import padded


def explain(report: InputReport, setup: Setup, *, first_input: bool, params: Mapping[str, Any]) -> None:
    """Fill ``report``'s cause, note, ``taylor_orders`` and ``evidence`` (patterns, where, taylor)."""
    found = patterns.diagnose(report, setup, first_input=first_input)
    stride = largest(params, "stride") or None
    place = where.describe(report, first_input=first_input, stride=stride, pads=padded(params))
    taylor = variants.taylor_orders(setup, report.index, report.failing_map)
    report.taylor_orders = [round(o, 3) for o in taylor.orders]
    report.evidence["taylor"] = taylor.to_dict()
    report.evidence["patterns"] = [p.to_dict() for p in found]
    report.evidence["where"] = place
    if found:
        report.cause = found[0].message
    elif place:
        report.cause = f"no known bug pattern fits; the error sits {place}"
    if place and found:
        report.note = f"error {place}" if report.note is None else f"{report.note}; error {place}"
