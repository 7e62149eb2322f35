"""The HTML report: one self-contained file (inline CSS, pictures as base64 PNG, no scripts).

For every failed entry it shows the cause, the diagnosed patterns, the minimal failing case and
how to replay it, and for each failing input a heatmap of where the error sits and the Taylor
remainder plot; the full text report follows. Everything that comes from user code (layer names,
messages, tracebacks, case descriptions) goes through ``html.escape``, its control characters
made visible. Without matplotlib the report says so where the pictures would be.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import partial
from html import escape as html_escape
from typing import Any

from .._ground.formatting import visible
from .._result import register_html_renderer
from .model import COMPLETE, Entry, Run
from .rows import COLUMNS, NOT_RUN, entry_rows, title

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1150px; color: #1d1d1f; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; }
h3 { font-size: 14px; margin: 18px 0 6px; }
.meta { color: #555; margin: 2px 0; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; color: #fff; font-weight: 600; }
.passed { background: #1e8e3e; } .failed { background: #c5221f; } .error { background: #8e24aa; }
.skipped { background: #b06000; } .crashed, .timeout, .interrupted, .incomplete { background: #c5221f; }
table { border-collapse: collapse; width: 100%; margin-top: 12px; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.row-failed td, tr.row-error td, tr.row-crashed td, tr.row-timeout td { background: #fff4f4; }
td.v-ok { color: #1e8e3e; font-weight: 600; } td.v-FAILED { color: #c5221f; font-weight: 700; }
td.v-ERROR { color: #8e24aa; font-weight: 700; } td.v-SKIPPED { color: #b06000; }
td.v-CRASHED, td.v-TIMEOUT { color: #c5221f; font-weight: 700; }
section.entry { border-top: 2px solid #c5221f; margin-top: 28px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; }
dt { font-weight: 600; color: #444; } dd { margin: 0; }
code, pre { font: 12px/1.4 ui-monospace, monospace; } pre { background: #f6f6f8; padding: 10px;
  overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
.pictures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.pictures img { border: 1px solid #ddd; max-width: 100%; }
.note { color: #8a6d00; background: #fff8e1; padding: 6px 10px; }
"""
NO_MATPLOTLIB = "matplotlib is not installed: pip install &quot;gradcheck-kit[report]&quot; for pictures"
NUMERIC = ("max abs err", "max rel err", "kinks", "examples")


def escape(text: Any) -> str:
    """User text for HTML: escaped, control characters made visible."""
    return html_escape(visible(text))


def render_html(run: Run) -> str:
    """The whole report as one self-contained HTML document.

    Failed entries get their cause, patterns, minimal case, replay and, with matplotlib, a
    heatmap of where the error sits and a Taylor plot per failing input; user text is escaped.

    Parameters
    ----------
    run : Run
        The run (live, or read back with ``load``).

    Returns
    -------
    str
        The document (inline CSS, pictures as base64 PNG, no scripts).

    Examples
    --------
    >>> from gradcheck_kit.report import Entry, Run, render_html
    >>> run = Run([Entry.skipped("conv2d", "cupy", "float32", "cupy is not installed")], seed=0)
    >>> render_html(run).startswith("<!DOCTYPE html>")
    True
    """
    entries = [e.to_dict() for e in run.entries]
    body = [_header(run), _summary_table(entries)]
    body += [_detail(k, data) for k, data in enumerate(entries) if data["status"] in ("failed", *NOT_RUN)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>gradcheck-kit report: {escape(run.summary())}</title><style>{STYLE}</style></head>\n"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def render_result_html(result: Any) -> str:
    """One result as the HTML report shows its entry: the table row and, for a failure, its
    section (cause, patterns, minimal case, replay, pictures, full text); user text escaped.
    ``CheckResult`` and ``PropertyResult`` show it in notebooks (``_repr_html_``)."""
    data = Entry.from_result(result).to_dict()
    body = [_summary_table([data])]
    if data["status"] in ("failed", *NOT_RUN):
        body.append(_detail(0, data))
    return '<div class="gradcheck-kit">\n' + "\n".join(body) + "\n</div>"


def _header(run: Run) -> str:
    verdict = "passed" if run.passed else "failed" if run.state == COMPLETE else run.state
    targets = ", ".join(run.targets) or "(entry points)"
    unfinished = "".join(f'<p class="note">{escape(line)}</p>\n' for line in run.unfinished())
    return (
        f'<h1>gradcheck-kit report <span class="badge {verdict}">{verdict.upper()}</span></h1>\n'
        f'<p class="meta">{escape(run.header())}</p>\n'
        f'<p class="meta">targets: {escape(targets)}; started {escape(run.started)}; '
        f"{escape(run.summary())}</p>\n{unfinished}"
    ).rstrip("\n")


def _summary_table(entries: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for k, data in enumerate(entries):
        for row in entry_rows(data):
            lines.append(f'<tr class="row-{escape(data["status"])}">{_cells(k, data, row)}</tr>')
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _cells(k: int, data: dict[str, Any], row: dict[str, str]) -> str:
    cells = []
    for column in COLUMNS:
        text = escape(row[column])
        if column == "layer" and data["status"] in ("failed", *NOT_RUN):
            text = f'<a href="#entry-{k}">{text}</a>'
        css = "num" if column in NUMERIC else f"v-{escape(row[column])}" if column == "verdict" else ""
        cells.append(f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>")
    return "".join(cells)


def _detail(k: int, data: dict[str, Any]) -> str:
    parts = [f'<section class="entry" id="entry-{k}"><h2>{escape(title(data))}</h2>', _facts(data)]
    check = _check(data)
    for report in (check or {}).get("inputs") or []:
        if report.get("passed") is False:
            parts.append(_input_section(report))
    parts.append(_checks_section((check or {}).get("checks") or {}))
    text = data.get("message") or data.get("reason") or ""
    if text:
        parts.append(f"<h3>full report</h3><pre>{escape(text)}</pre>")
    parts.append("</section>")
    return "\n".join(parts)


def _check(data: dict[str, Any]) -> dict[str, Any] | None:
    result = data.get("result") or {}
    return result.get("check") if data.get("kind") == "property" else result or None


def _facts(data: dict[str, Any]) -> str:
    result = data.get("result") or {}
    replay = (result.get("replay") or {}).get("call")
    facts = [
        ("cause", data.get("cause") or data.get("reason")),
        ("patterns", ", ".join(data.get("patterns") or [])),
        ("minimal case", data.get("case")),
        ("examples", data.get("examples")),
        ("replay", replay),
    ]
    items = [f"<dt>{escape(k)}</dt><dd>{_fact(k, v)}</dd>" for k, v in facts if v not in (None, "")]
    return "<dl>" + "".join(items) + "</dl>"


def _fact(key: str, value: Any) -> str:
    text = escape(str(value))
    return f"<code>{text}</code>" if key in ("minimal case", "replay") else text


def _checks_section(checks: dict[str, Any]) -> str:
    """The parts beyond the first-order gradient (second order, forward mode, ...): one row each."""
    if not checks:
        return ""
    rows = []
    for name, part in checks.items():
        calls = ", ".join(f"{k} {v}" for k, v in sorted((part.get("calls") or {}).items()))
        text = part.get("cause") or part.get("message") or ""
        cost = f"{calls}; {float(part.get('seconds') or 0):.3f} s" if calls else ""
        cells = (name, part.get("status", ""), text, cost)
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "<tr><th>check</th><th>status</th><th>what / cause</th><th>cost</th></tr>"
    return f"<h3>checks beyond the first order</h3><table>{head}{''.join(rows)}</table>"


def _input_section(report: dict[str, Any]) -> str:
    name = str(report.get("name"))
    shape = ",".join(str(n) for n in report.get("shape") or [])
    total = 1
    for n in report.get("shape") or []:
        total *= int(n)
    head = (
        f"<h3>input {escape(name)} {escape(str(report.get('dtype')))}[{escape(shape)}]: "
        f"{escape(str(report.get('failing')))} of {total} elements fail</h3>"
    )
    lines = [head]
    if report.get("cause"):
        lines.append(f"<p>likely cause: {escape(str(report['cause']))}</p>")
    lines.append('<div class="pictures">' + _pictures(name, report) + "</div>")
    return "\n".join(lines)


def _pictures(name: str, report: dict[str, Any]) -> str:
    from . import plots

    if not plots.available():
        return f'<p class="note">{NO_MATPLOTLIB}</p>'
    pictures = []
    if report.get("error_map") is not None:
        draw = partial(plots.error_heatmap, name, report["error_map"], report.get("failing_map"))
        pictures.append(_image(draw, f"where the error in {name} sits"))
    else:
        pictures.append(
            '<p class="note">no element map (the input is too large or was checked by projection)</p>'
        )
    taylor = (report.get("evidence") or {}).get("taylor")
    if taylor and taylor.get("steps"):
        draw = partial(plots.taylor_plot, name, taylor["steps"], taylor["residuals"], taylor.get("orders"))
        pictures.append(_image(draw, f"Taylor remainder of {name}"))
    return "\n".join(pictures)


def _image(draw: Callable[[], bytes], alt: str) -> str:
    try:
        png = draw()
    except Exception as exc:  # a picture must never cost the report
        return f'<p class="note">picture not drawn: {escape(type(exc).__name__)}: {escape(str(exc))}</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


register_html_renderer(render_result_html)  # CheckResult._repr_html_ and PropertyResult's
