"""Reports of a run over many layers: one model (``Run`` of ``Entry``, its JSON schema, reading it
back), and one renderer per format: plain text, a rich table, Markdown, HTML (with pictures).

    run = Run(entries=[Entry.from_result(gk.property_check("conv2d"), dtype="float64")])
    write_atomic("report.json", run.to_json())
    print(render_text(load("report.json")))
"""

from __future__ import annotations

from .html import render_html
from .markdown import render_markdown
from .model import (
    ERROR,
    FAILED,
    PASSED,
    SCHEMA,
    SKIPPED,
    STATUSES,
    Entry,
    Run,
    load,
    result_dict,
    write_atomic,
)
from .rows import COLUMNS
from .table import render_table
from .text import render_text

__all__ = [
    "COLUMNS",
    "ERROR",
    "FAILED",
    "PASSED",
    "SCHEMA",
    "SKIPPED",
    "STATUSES",
    "Entry",
    "Run",
    "load",
    "render_html",
    "render_markdown",
    "render_table",
    "render_text",
    "result_dict",
    "write_atomic",
]
