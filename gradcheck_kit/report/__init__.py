"""Reports of a run over many layers: one model (``Run`` of ``Entry``, its JSON schema, reading it
back, checked field by field), one renderer per format: plain text, a rich table, Markdown, HTML
(with pictures), and where they are written (checked before a run, written as it goes).

    run = Run(entries=[Entry.from_result(gk.property_check("conv2d"), dtype="float64")])
    write_atomic("report.json", run.to_json())
    print(render_text(load("report.json")))
"""

from __future__ import annotations

from .html import render_html
from .markdown import render_markdown
from .model import (
    COMPLETE,
    CRASHED,
    ERROR,
    FAILED,
    INCOMPLETE,
    INTERRUPTED,
    PASSED,
    SCHEMA,
    SKIPPED,
    STATES,
    STATUSES,
    TIMEOUT,
    Entry,
    Run,
    dumps,
    load,
    result_dict,
)
from .rows import COLUMNS
from .table import render_table
from .text import render_text
from .writing import Output, ReportWriter, output, render, write_atomic

__all__ = [
    "COLUMNS",
    "COMPLETE",
    "CRASHED",
    "ERROR",
    "FAILED",
    "INCOMPLETE",
    "INTERRUPTED",
    "PASSED",
    "SCHEMA",
    "SKIPPED",
    "STATES",
    "STATUSES",
    "TIMEOUT",
    "Entry",
    "Output",
    "ReportWriter",
    "Run",
    "dumps",
    "load",
    "output",
    "render",
    "render_html",
    "render_markdown",
    "render_table",
    "render_text",
    "result_dict",
    "write_atomic",
]
