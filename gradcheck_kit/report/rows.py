"""What every renderer of a ``Run`` shows: the table's columns, one row per entry (or per failing
input), the failed entries' details and titles. Renderers read the JSON form of each entry only,
so a run read back from a file renders exactly like a live one. User text comes out with its
control characters made visible (``\\x1b``): no renderer can pass an escape sequence on."""

from __future__ import annotations

from typing import Any

from .._ground.formatting import num, one_line, visible
from .model import CRASHED, ERROR, FAILED, PASSED, TIMEOUT, Run

NOT_RUN = (ERROR, CRASHED, TIMEOUT)  # statuses whose entries carry a reason, not a verdict

COLUMNS = (
    "layer",
    "backend",
    "dtype",
    "input",
    "max abs err",
    "max rel err",
    "kinks",
    "examples",
    "verdict",
    "cause",
)

# -- rows shared by the renderers ---------------------------------------------------------------


def rows(run: Run) -> list[dict[str, str]]:
    """Table rows (keys: ``COLUMNS``) as text for every entry of ``run``."""
    return [row for entry in run.entries for row in entry_rows(entry.to_dict())]


def entry_rows(data: dict[str, Any]) -> list[dict[str, str]]:
    """One row per failing input of a failed entry (its minimal case), else one row; numbers in
    3 significant digits."""
    failing = [r for r in data["inputs"] if r.get("passed") is False]
    if data["status"] == FAILED and failing:
        return [_row(data, r["name"], r, r.get("cause") or data["cause"]) for r in failing]
    name = "all" if data["status"] == PASSED else _finding_input(data) or "-"
    return [_row(data, name, data, data["cause"] or data["reason"])]


def _finding_input(data: dict[str, Any]) -> str | None:
    """The input named by the first error finding (a contract failure), if any."""
    result = data.get("result") or {}
    check = result.get("check") if data.get("kind") == "property" else result
    findings = (check or {}).get("findings") or []
    return next((f.get("input") for f in findings if f.get("severity") == "error" and f.get("input")), None)


def _row(data: dict[str, Any], name: str, numbers: dict[str, Any], cause: str | None) -> dict[str, str]:
    return {
        "layer": visible(data["layer"]),
        "backend": visible(data["backend"]),
        "dtype": visible(data.get("dtype") or "-"),
        "input": one_line(name),
        "max abs err": num(numbers.get("max_abs_err")),
        "max rel err": num(numbers.get("max_rel_err")),
        "kinks": _int(numbers.get("kinks")),
        "examples": _int(data.get("examples")),
        "verdict": data["status"].upper() if data["status"] != PASSED else "ok",
        "cause": one_line(cause) if cause else "",
    }


def _int(value: Any) -> str:
    return "-" if value is None else str(value)


def failures(run: Run) -> list[tuple[dict[str, Any], str]]:
    """(entry JSON, detail text) for each failed or errored entry: the stored message (the
    minimal failing case and its check) or the reason."""
    out = []
    for entry in run.entries:
        data = entry.to_dict()
        if data["status"] in (FAILED, *NOT_RUN):
            detail = data.get("message") or data.get("reason") or "(no detail recorded)"
            out.append((data, visible(detail)))
    return out


def title(data: dict[str, Any]) -> str:
    """``conv2d [numpy, float32] failed`` for an entry's JSON."""
    return visible(f"{data['layer']} [{data['backend']}, {data.get('dtype') or '-'}] {data['status']}")
