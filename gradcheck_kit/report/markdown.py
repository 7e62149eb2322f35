"""A compact Markdown summary of a ``Run`` for a CI job summary (``$GITHUB_STEP_SUMMARY``):
verdict, counts, one table row per entry, the minimal failing cases in collapsed blocks.
Everything from user code is escaped for Markdown and the HTML GitHub allows in it, control
characters made visible."""

from __future__ import annotations

from html import escape as html_escape
from typing import Any

from .._ground.formatting import visible
from .model import COMPLETE, Run
from .rows import COLUMNS, failures, rows, title


def md_escape(text: Any) -> str:
    """Text safe inside Markdown (and the HTML GitHub allows in it): HTML-escaped, Markdown
    punctuation backslash-escaped, newlines folded."""
    out = " ".join(visible(text).split())
    for char in "\\`*_{}[]()#+!|~":
        out = out.replace(char, "\\" + char)
    return html_escape(out, quote=True)


def render_markdown(run: Run) -> str:
    """A compact Markdown summary for a CI job summary (``$GITHUB_STEP_SUMMARY``).

    Everything from user code is escaped for Markdown and the HTML GitHub allows in it, control
    characters made visible.

    Parameters
    ----------
    run : Run
        The run (live, or read back with ``load``).

    Returns
    -------
    str
        The verdict (``✅ passed``, ``❌ failed``, or ``❌ incomplete`` / ``❌ interrupted`` for a
        run that did not finish), the header and counts, what an unfinished run did not run,
        the notes of a passing one, one table row per entry (failing inputs spelled out) and
        the minimal failing cases in collapsed ``<details>`` blocks.

    Examples
    --------
    >>> from gradcheck_kit.report import Entry, Run, render_markdown
    >>> run = Run([Entry.skipped("conv2d", "cupy", "float32", "cupy is not installed")], seed=0)
    >>> print(render_markdown(run).splitlines()[0])
    ## gradcheck-kit: ✅ passed
    >>> run.state = "incomplete"
    >>> print(render_markdown(run).splitlines()[0])
    ## gradcheck-kit: ❌ incomplete
    """
    verdict = "✅ passed" if run.passed else "❌ failed" if run.state == COMPLETE else f"❌ {run.state}"
    lines = [f"## gradcheck-kit: {verdict}", "", md_escape(run.header()), "", md_escape(run.summary()), ""]
    lines += [f"**{md_escape(line)}**\n" for line in run.unfinished()]
    lines += [f"_{md_escape(note)}_\n" for note in run.notes()]
    shown = list(COLUMNS)
    lines += ["| " + " | ".join(shown) + " |", "|" + "|".join("---" for _ in shown) + "|"]
    lines += ["| " + " | ".join(md_escape(r[c]) for c in shown) + " |" for r in rows(run)]
    for data, detail in failures(run):
        body = html_escape(visible(detail), quote=True)
        lines += [
            "",
            f"<details><summary>{md_escape(title(data))}</summary>",
            "",
            f"<pre>{body}</pre>",
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"
