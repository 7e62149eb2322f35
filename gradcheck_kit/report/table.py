"""A ``Run`` printed to a ``rich`` console: the header, a table, each failure's details, the
summary. User text goes through ``rich.markup.escape``, its control characters made visible.

The table fits the console's width without splitting a number or a dtype: those columns never
wrap, and where the whole table does not fit, columns are dropped (kinks, examples, max abs err,
then input and backend) and dtypes and headers abbreviated, in that order, until it does; a
caption names what was left out. Only the layer name and the cause wrap (on words)."""

from __future__ import annotations

from typing import Any, Literal

from .._ground.formatting import visible
from .model import Run
from .rows import COLUMNS, failures, rows, title

NUMERIC = ("max abs err", "max rel err", "kinks", "examples")
UNBROKEN = (*NUMERIC, "dtype", "verdict", "backend")  # columns that never wrap
SHORT_DTYPES = {"float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16"}
SHORT_HEADERS = {"max abs err": "abs err", "max rel err": "rel err", "examples": "ex."}
# what goes at narrower widths, one step at a time: (columns dropped, abbreviate)
STEPS: tuple[tuple[tuple[str, ...], bool], ...] = (
    ((), False),
    (("kinks",), False),
    (("kinks", "examples"), False),
    (("kinks", "examples"), True),
    (("kinks", "examples", "max abs err"), True),
    (("kinks", "examples", "max abs err", "input"), True),
    (("kinks", "examples", "max abs err", "input", "backend"), True),
)
MIN_LAYER, MIN_CAUSE = 8, 16  # the widths the wrapping columns keep at least


def render_table(run: Run, console: Any) -> None:
    """Print the run to a ``rich.console.Console``: header, table, failure details, summary.

    User text goes through ``rich.markup.escape``. The table fits ``console.width``: numbers
    and dtypes are never split across lines; at narrow widths columns are dropped or
    abbreviated instead, and a caption says which.

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

    console.print(_grid(run, rows(run), console.width))
    for data, detail in failures(run):
        console.rule(escape(title(data)))
        console.print(escape(detail), highlight=False)
    verdict = "[bold green]PASSED[/]" if run.passed else "[bold red]FAILED[/]"
    console.print(f"{verdict}: {escape(run.summary())}")
    for line in run.unfinished():
        console.print(escape(visible(line)), style="bold red", highlight=False)
    for note in run.notes():
        console.print(escape(visible(note)), style="dim", highlight=False)


def _grid(run: Run, table: list[dict[str, str]], width: int) -> Any:
    from rich.markup import escape
    from rich.table import Table

    dropped, short = _fitting(table, width)
    columns = [c for c in COLUMNS if c not in dropped]
    caption = f"left out at this width: {', '.join(dropped)}" if dropped else None
    grid = Table(title=escape(visible(run.header())), title_justify="left", caption=caption)
    for column in columns:
        header = SHORT_HEADERS.get(column, column) if short else column
        justify: Literal["right", "left"] = "right" if column in NUMERIC else "left"
        grid.add_column(header, justify=justify, no_wrap=column in UNBROKEN, overflow="fold")
    styles = {"ok": "green", "FAILED": "bold red", "ERROR": "bold magenta", "SKIPPED": "yellow"}
    styles |= {"CRASHED": "bold red", "TIMEOUT": "bold red"}
    for row in table:
        cells = {c: escape(_cell(row, c, short)) for c in columns}
        cells["verdict"] = f"[{styles[row['verdict']]}]{row['verdict']}[/]"
        grid.add_row(*cells.values())
    return grid


def _cell(row: dict[str, str], column: str, short: bool) -> str:
    return SHORT_DTYPES.get(row[column], row[column]) if short and column == "dtype" else row[column]


def _fitting(table: list[dict[str, str]], width: int) -> tuple[tuple[str, ...], bool]:
    """The first step of ``STEPS`` whose table fits ``width`` (the last one when none does)."""
    for dropped, short in STEPS:
        if _needed(table, dropped, short) <= width:
            return dropped, short
    return STEPS[-1]


def _needed(table: list[dict[str, str]], dropped: tuple[str, ...], short: bool) -> int:
    """Columns that do not wrap at their widest, the layer and the cause at their least, plus
    rich's borders and padding (3 per column, 1 more)."""
    total = 1
    for column in (c for c in COLUMNS if c not in dropped):
        header = SHORT_HEADERS.get(column, column) if short else column
        widest = max([len(header), *(len(_cell(row, column, short)) for row in table)])
        least = {"layer": MIN_LAYER, "input": MIN_LAYER, "cause": MIN_CAUSE}.get(column, widest)
        total += 3 + min(widest, least)
    return total
