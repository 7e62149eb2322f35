"""The human report behind ``print(result)``: a verdict line, one line per input, the findings."""

from __future__ import annotations

from typing import Any

from .result import CheckResult, Finding, InputReport


def render_text(result: CheckResult) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [f"gradcheck {result.name} [{result.backend}] {verdict}", f"  case: {result.case}"]
    for report in result.inputs:
        lines.append(_input_line(report))
        if not report.passed:
            lines += _failure_detail(report)
    lines += [_finding_line(f) for f in result.findings]
    calls = ", ".join(f"{k} {v}" for k, v in sorted(result.calls.items()))
    lines.append(f"  seed {result.seed}; calls: {calls}; {result.seconds:.3f} s")
    if result.passed and not result.settings.get("reference", True):
        lines.append(f"  {NO_REFERENCE}")
    return "\n".join(lines)


# A backward that is the exact gradient of a wrong forward passes any gradient check.
NO_REFERENCE = (
    "note: backward matches this forward; a bug in the forward itself is invisible without a "
    "reference: add reference=<a torch function of the same math>"
)


def _input_line(r: InputReport) -> str:
    shape = ",".join(str(n) for n in r.shape)
    status = "ok" if r.passed else "FAIL"
    kinks = f", {r.kinks} kinks" if r.kinks else ""
    relative = "- (numeric gradient 0)" if r.max_rel_err == float("inf") else _num(r.max_rel_err)
    return (
        f"  {status:4} {r.name} {r.dtype}[{shape}] {r.mode}: max abs err {_num(r.max_abs_err)}, "
        f"max rel err {relative} over {r.checked} probes{kinks}"
    )


def _failure_detail(r: InputReport) -> list[str]:
    where = f" at {list(r.worst_index)}" if r.worst_index is not None else " (projection)"
    lines = [
        f"       worst{where}: analytic {_num(r.analytic, 7)} vs numeric {_num(r.numeric, 7)} "
        f"(tolerance {_num(r.tolerance)}); {r.failing} failing"
    ]
    if r.cause:
        lines.append(f"       likely cause: {r.cause}")
    if r.note:
        lines.append(f"       note: {r.note}")
    return lines


def _finding_line(f: Finding) -> str:
    tag = "error" if f.is_error else "warning"
    line = f"  {tag}: [{f.kind}] {f.message}"
    if f.traceback:
        tail = f.traceback.strip().splitlines()[-3:]
        line += "\n" + "\n".join("       " + t for t in tail)
    return line


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"
