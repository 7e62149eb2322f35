"""Text renderers of a ``Run``: rows shared by every format, plain text, a rich table and a
Markdown summary. They read the JSON form of each entry only, so a run read back from a file
renders exactly like a live one. Everything that comes from user code is escaped for its medium.
"""

from __future__ import annotations

from html import escape as html_escape
from typing import Any

from .report import COLUMNS, ERROR, FAILED, PASSED, Run, finite

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
        "layer": data["layer"],
        "backend": data["backend"],
        "dtype": data.get("dtype") or "-",
        "input": name,
        "max abs err": _num(numbers.get("max_abs_err")),
        "max rel err": _num(numbers.get("max_rel_err")),
        "kinks": _int(numbers.get("kinks")),
        "examples": _int(data.get("examples")),
        "verdict": data["status"].upper() if data["status"] != PASSED else "ok",
        "cause": _one_line(cause) if cause else "",
    }


def _num(value: Any) -> str:
    return "-" if finite(value) is None else f"{value:.3g}"


def _int(value: Any) -> str:
    return "-" if value is None else str(value)


def _one_line(text: str, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failures(run: Run) -> list[tuple[dict[str, Any], str]]:
    """(entry JSON, detail text) for each failed or errored entry: the stored message (the
    minimal failing case and its check) or the reason."""
    out = []
    for entry in run.entries:
        data = entry.to_dict()
        if data["status"] in (FAILED, ERROR):
            out.append((data, data.get("message") or data.get("reason") or "(no detail recorded)"))
    return out


def title(data: dict[str, Any]) -> str:
    """``conv2d [numpy, float32] failed`` for an entry's JSON."""
    return f"{data['layer']} [{data['backend']}, {data.get('dtype') or '-'}] {data['status']}"


# -- the formats ----------------------------------------------------------------------------------


def text(run: Run) -> str:
    """Plain text for logs and pipes: header, an aligned table, the details of each failure."""
    table = [dict(zip(COLUMNS, COLUMNS)), *rows(run)]
    widths = {c: max(len(r[c]) for r in table) for c in COLUMNS[:-1]}
    lines = [run.header()]
    lines += ["  ".join([*(r[c].ljust(widths[c]) for c in COLUMNS[:-1]), r["cause"]]).rstrip() for r in table]
    for data, detail in failures(run):
        lines += ["", f"--- {title(data)}"]
        lines += detail.splitlines()
    lines += ["", f"{'PASSED' if run.passed else 'FAILED'}: {run.summary()}", *run.notes()]
    return "\n".join(lines) + "\n"


def table(run: Run, console: Any) -> None:
    """Print the run to a ``rich.console.Console``: header, table, failure details, summary."""
    from rich.markup import escape
    from rich.table import Table

    grid = Table(title=escape(run.header()), title_justify="left", show_lines=False)
    for column in COLUMNS:
        numeric = column in ("max abs err", "max rel err", "kinks", "examples")
        grid.add_column(column, justify="right" if numeric else "left", overflow="fold")
    styles = {"ok": "green", "FAILED": "bold red", "ERROR": "bold magenta", "SKIPPED": "yellow"}
    for row in rows(run):
        cells = {c: escape(row[c]) for c in COLUMNS}
        cells["verdict"] = f"[{styles[row['verdict']]}]{row['verdict']}[/]"
        grid.add_row(*cells.values())
    console.print(grid)
    for data, detail in failures(run):
        console.rule(escape(title(data)))
        console.print(escape(detail), highlight=False)
    verdict = "[bold green]PASSED[/]" if run.passed else "[bold red]FAILED[/]"
    console.print(f"{verdict}: {escape(run.summary())}")
    for note in run.notes():
        console.print(escape(note), style="dim", highlight=False)


def md_escape(text: Any) -> str:
    """Text safe inside Markdown (and the HTML GitHub allows in it): HTML-escaped, Markdown
    punctuation backslash-escaped, newlines folded."""
    out = " ".join(str(text).split())
    for char in "\\`*_{}[]()#+!|~":
        out = out.replace(char, "\\" + char)
    return html_escape(out, quote=True)


def markdown(run: Run) -> str:
    """A compact summary for a CI job summary: verdict, counts, one table row per entry
    (failing inputs spelled out), the minimal failing cases in collapsed blocks."""
    verdict = "✅ passed" if run.passed else "❌ failed"
    lines = [f"## gradcheck-kit: {verdict}", "", md_escape(run.header()), "", md_escape(run.summary()), ""]
    lines += [f"_{md_escape(note)}_\n" for note in run.notes()]
    shown = list(COLUMNS)
    lines += ["| " + " | ".join(shown) + " |", "|" + "|".join("---" for _ in shown) + "|"]
    lines += ["| " + " | ".join(md_escape(r[c]) for c in shown) + " |" for r in rows(run)]
    for data, detail in failures(run):
        body = html_escape(detail, quote=True)
        lines += [
            "",
            f"<details><summary>{md_escape(title(data))}</summary>",
            "",
            f"<pre>{body}</pre>",
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"
