"""Plain text of a ``Run`` for logs and pipes: the header, an aligned table, each failure's
details, the summary, what did not run and the footer notes (control characters visible)."""

from __future__ import annotations

from .._ground.formatting import visible
from .model import Run
from .rows import COLUMNS, failures, rows, title


def render_text(run: Run) -> str:
    """Plain text for logs and pipes: header, an aligned table, the details of each failure.

    Parameters
    ----------
    run : Run
        The run (live, or read back with ``load``).

    Returns
    -------
    str
        The header, the table, each failure's details, the summary and the footer notes.

    Examples
    --------
    >>> from gradcheck_kit.report import Entry, Run, render_text
    >>> run = Run([Entry.skipped("conv2d", "cupy", "float32", "cupy is not installed")], seed=0)
    >>> print(render_text(run))
    gradcheck-kit ...: seed=0, profile=None, backends=-
    layer   backend  dtype    input  max abs err  max rel err  kinks  examples  verdict  cause
    conv2d  cupy     float32  -      -            -            -      -         SKIPPED  cupy is not installed
    <BLANKLINE>
    PASSED: 1 skipped in 0.0 s
    <BLANKLINE>
    """
    table = [dict(zip(COLUMNS, COLUMNS)), *rows(run)]
    widths = {c: max(len(r[c]) for r in table) for c in COLUMNS[:-1]}
    lines = [visible(run.header())]
    lines += ["  ".join([*(r[c].ljust(widths[c]) for c in COLUMNS[:-1]), r["cause"]]).rstrip() for r in table]
    for data, detail in failures(run):
        lines += ["", f"--- {title(data)}"]
        lines += detail.splitlines()
    lines += ["", f"{'PASSED' if run.passed else 'FAILED'}: {run.summary()}"]
    lines += [visible(line) for line in (*run.unfinished(), *run.notes())]
    return "\n".join(lines) + "\n"
