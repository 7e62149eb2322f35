"""A ``Run`` printed to a ``rich`` console: the header, a table, each failure's details, the
summary. User text goes through ``rich.markup.escape``, its control characters made visible."""

from __future__ import annotations

from typing import Any

from .._ground.formatting import visible
from .model import Run
from .rows import COLUMNS, failures, rows, title


def render_table(run: Run, console: Any) -> None:
    """Print the run to a ``rich.console.Console``: header, table, failure details, summary.

    User text goes through ``rich.markup.escape``.

    Parameters
    ----------
    run : Run
        The run (live, or read back with ``load``).
    console : rich.console.Console
        Where to print.

    Examples
    --------
    >>> import io
    >>> from rich.console import Console
    >>> from gradcheck_kit.report import Entry, Run, render_table
    >>> console = Console(file=io.StringIO(), width=120)
    >>> render_table(Run([Entry.skipped("conv2d", "cupy", "float32", "cupy is not installed")]), console)
    >>> console.file.getvalue().splitlines()[-1]
    'PASSED: 1 skipped in 0.0 s'
    """
    from rich.markup import escape
    from rich.table import Table

    grid = Table(title=escape(visible(run.header())), title_justify="left", show_lines=False)
    for column in COLUMNS:
        numeric = column in ("max abs err", "max rel err", "kinks", "examples")
        grid.add_column(column, justify="right" if numeric else "left", overflow="fold")
    styles = {"ok": "green", "FAILED": "bold red", "ERROR": "bold magenta", "SKIPPED": "yellow"}
    styles |= {"CRASHED": "bold red", "TIMEOUT": "bold red"}
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
    for line in run.unfinished():
        console.print(escape(visible(line)), style="bold red", highlight=False)
    for note in run.notes():
        console.print(escape(visible(note)), style="dim", highlight=False)
