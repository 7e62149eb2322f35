"""The rich table at terminal widths from 60 to 200 columns: a number or a dtype is never split
across lines (``5.42e`` / ``-20``, ``float`` / ``64``) nor cut short; columns are dropped or
abbreviated instead, and the caption says which."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from rich.console import Console

import gradcheck_kit as gk
from gradcheck_kit.report import COLUMNS, Entry, Run, render_table
from gradcheck_kit.report.rows import rows
from gradcheck_kit.report.table import SHORT_DTYPES

X = (np.linspace(-1.0, 1.0, 6).reshape(2, 3),)
UNBROKEN = ("max abs err", "max rel err", "kinks", "examples", "dtype", "verdict", "backend")
BOX = re.compile(r"[│┃┏┓┗┛┡┩┠┨━─┳┻╇╈┼┬┴└┘┌┐╭╮╰╯]")


def _tanh_backward(dy, x):
    return (dy * (1 - np.tanh(x) ** 2),)


@pytest.fixture(scope="module")
def run() -> Run:
    good = gk.check(np.tanh, _tanh_backward, X)
    bad = gk.check(np.tanh, lambda dy, x: (dy * np.tanh(x) * 1.0001,), X)
    long_name = gk.check(np.tanh, _tanh_backward, (X[0].astype(np.float32),))
    entries = [
        Entry.from_result(good, dtype="float64"),
        Entry.from_result(bad, dtype="float64"),
        Entry.from_result(long_name, dtype="float32"),
        Entry.skipped("conv2d_untied_with_a_long_name", "torch:cuda", "bfloat16", "no CUDA device here"),
    ]
    return Run(
        entries, seed=0, profile="ci", backends=["numpy", "torch:cuda"], dtypes=["float64", "bfloat16"]
    )


def _table_words(text: str) -> list[str]:
    """The words of the table (from its first border to its last), borders taken out."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    last = next(i for i, line in enumerate(lines) if line.startswith("└"))
    return [word for line in lines[first : last + 1] for word in BOX.sub(" ", line).split()]


def _tokens(run: Run) -> set[str]:
    found = {row[c] for row in rows(run) for c in UNBROKEN}
    return found | {SHORT_DTYPES.get(t, t) for t in found}


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_no_number_or_dtype_is_split_across_lines_or_cut_short_at_any_width(run, width):
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    render_table(run, console)
    text = console.export_text()
    numeric = re.compile(r"^[-+0-9.e]+$|^(b?f(loat)?\d*)$")
    pieces = [w for w in _table_words(text) if numeric.match(w) and w not in _tokens(run)]
    assert pieces == [], f"split or cut at width {width}:\n{text}"
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width


def test_the_full_table_shows_every_column_and_a_narrow_one_names_what_it_left_out(run):
    wide = Console(record=True, width=200, file=io.StringIO(), color_system=None)
    render_table(run, wide)
    header = next(line for line in wide.export_text().splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")] == list(COLUMNS)
    narrow = Console(record=True, width=60, file=io.StringIO(), color_system=None)
    render_table(run, narrow)
    text = narrow.export_text()
    assert "left out at this width: kinks, examples" in " ".join(text.split())
    assert " f64 " in text and "float64 " not in text.split("┏")[1]  # dtypes abbreviated in the table
