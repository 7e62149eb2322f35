"""The run model: entries from property and check results, the JSON report and its validation,
atomic writes, and the text, rich and Markdown renderers (escaped)."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from rich.console import Console

import gradcheck_kit as gk
from gradcheck_kit.registry import Registry
from gradcheck_kit.report import (
    SCHEMA,
    Entry,
    Run,
    load,
    render_markdown,
    render_table,
    render_text,
    write_atomic,
)

X = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
HOSTILE_NAME = "<script>alert(1)</script>|*x*"


def _tanh_backward(dy, x):
    return (dy * (1 - np.tanh(x) ** 2),)


def _wrong_backward(dy, x):
    return (dy * np.tanh(x),)


@pytest.fixture(scope="module")
def layers():
    into = Registry()
    case = [gk.Case((X.copy(),))]
    good = gk.register("tanh_ok", np.tanh, _tanh_backward, cases=case, into=into)
    bad = gk.register(HOSTILE_NAME, np.tanh, _wrong_backward, cases=case, into=into)
    return good, bad


@pytest.fixture(scope="module")
def run(layers):
    good, bad = layers
    entries = [
        Entry.from_result(gk.property_check(good, max_examples=3, database=False), dtype="float64"),
        Entry.from_result(gk.property_check(bad, max_examples=3, database=False), dtype="float64"),
        Entry.from_result(gk.check_case(good, good.cases[0])),
        Entry.skipped("tanh_ok", "cupy", "float64", "cupy is not installed"),
        Entry.errored("broken", "numpy", "float64", "layer 'broken' has no cases"),
    ]
    return Run(entries, seed=0, profile="ci", backends=["numpy"], dtypes=["float64"], targets=["x"])


def test_entries_take_status_cause_and_dtype_from_the_result(run):
    good, bad, single, skipped, errored = run.entries
    assert (good.status, good.reason, good.kind) == ("passed", None, "property")
    assert bad.status == "failed" and "x:" in bad.reason and bad.layer == HOSTILE_NAME
    assert (single.kind, single.dtype, single.status) == ("check", "float64", "passed")
    assert (skipped.status, errored.status) == ("skipped", "error")


def test_a_run_with_a_failure_or_an_error_does_not_pass_and_errors_win_the_exit_code(run):
    assert not run.passed and run.exit_code == 2
    assert run.counts == {"passed": 2, "failed": 1, "skipped": 1, "error": 1, "crashed": 0, "timeout": 0}
    only_failed = Run([e for e in run.entries if e.status != "error"])
    assert only_failed.exit_code == 1
    assert Run([run.entries[0], run.entries[3]]).exit_code == 0


def test_the_json_report_follows_schema_1(run):
    data = json.loads(run.to_json())
    assert data["schema"] == SCHEMA == 1 and data["tool"] == "gradcheck-kit"
    assert {"version", "started", "seconds", "seed", "profile", "backends", "dtypes", "targets"} <= set(data)
    assert data["passed"] is False and data["counts"]["failed"] == 1
    entry = data["entries"][1]
    keys = {"layer", "backend", "dtype", "status", "reason", "seconds", "kind", "examples", "max_abs_err"}
    keys |= {"max_rel_err", "kinks", "cause", "patterns", "case", "message", "inputs", "result"}
    assert keys <= set(entry)
    assert entry["inputs"][0]["name"] == "x" and entry["inputs"][0]["passed"] is False
    assert "minimal configuration" in entry["message"]


def test_failing_inputs_carry_full_shape_error_and_failing_maps(run):
    row = run.entries[1].to_dict()["result"]["check"]["inputs"][0]
    assert np.asarray(row["error_map"], dtype=float).shape == X.shape
    assert np.asarray(row["failing_map"]).dtype == bool
    passing = run.entries[2].to_dict()["result"]["inputs"][0]
    assert "error_map" not in passing


def test_a_run_read_back_from_json_renders_and_serializes_exactly_like_the_live_one(run):
    again = Run.from_dict(json.loads(run.to_json()))
    assert again.to_dict()["entries"] == run.to_dict()["entries"]
    assert render_text(again).splitlines()[1:] == render_text(run).splitlines()[1:]
    assert render_markdown(again) == render_markdown(run)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "report must be a JSON object, got list"),
        ({"schema": 2, "entries": []}, "report.schema=2 is not supported; accepted: 1"),
        ({"schema": 1}, "report has no 'entries'"),
        ({"schema": 1, "entries": {}}, "report.entries={} must be a list"),
        ({"schema": 1, "entries": [3]}, r"report.entries\[0\] must be a JSON object, got int"),
        ({"schema": 1, "entries": [{"layer": "a", "backend": "numpy"}]}, "has no 'status'"),
        (
            {"schema": 1, "entries": [{"layer": "a", "backend": "numpy", "status": "maybe"}]},
            r"report.entries\[0\].status='maybe' is unknown; accepted: passed, failed, skipped, error",
        ),
        ({"schema": 1, "entries": [], "seconds": "soon"}, "report.seconds='soon' must be a number"),
        (
            {"schema": 1, "entries": [], "backends": "numpy"},
            "report.backends='numpy' must be a list of strings",
        ),
    ],
)
def test_malformed_reports_are_refused_naming_the_field_and_what_is_accepted(data, message):
    with pytest.raises(gk.InvalidArgument, match=message):
        Run.from_dict(data)


def test_a_file_that_is_not_json_is_refused_with_its_line_and_column(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"schema": 1,\n  "entries": [,]}')
    with pytest.raises(gk.InvalidArgument, match=r"is not JSON \(.* at line 2, column"):
        load(path)
    with pytest.raises(gk.InvalidArgument, match="cannot be read"):
        load(tmp_path / "missing.json")


def test_write_atomic_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "sub" / "report.json"
    write_atomic(target, "old")
    write_atomic(target, "new")
    assert target.read_text() == "new" and os.listdir(target.parent) == ["report.json"]


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "report.json"
    write_atomic(target, "old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "bad \udc80 surrogate")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["report.json"]


def test_plain_text_lists_every_entry_with_its_verdict_and_the_minimal_failing_case(run):
    text = render_text(run)
    assert text.startswith("gradcheck-kit ") and "seed=0, profile=ci, backends=numpy" in text
    assert "layer" in text.splitlines()[1] and "verdict" in text.splitlines()[1]
    assert "FAILED" in text and "SKIPPED" in text and "ERROR" in text
    assert "minimal configuration" in text and text.rstrip().endswith("s")
    assert "FAILED: 2 passed, 1 failed, 1 skipped, 1 error" in text


def test_the_rich_table_prints_user_text_literally(run):
    stream = io.StringIO()
    render_table(run, Console(file=stream, width=200, color_system=None))
    out = stream.getvalue()
    assert "<script>alert(1)</script>" in out and "FAILED" in out and "tanh_ok" in out


def test_markdown_escapes_user_text_and_keeps_one_table_row_per_line(run):
    md = render_markdown(run)
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "\\|\\*x\\*" in md
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 5 and all(line.count(" | ") == 9 for line in table[2:])
    assert md.count("<details>") == 2 and md.count("</pre>") == 2


def test_the_docs_document_every_key_of_the_run_and_of_an_entry(run):
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "json-schema.md").read_text()
    schema = page.split("# The JSON report schema", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    top, entry = schema.split("ENTRY = {", 1)
    assert set(re.findall(r'"(\w+)":', entry)) == set(run.to_dict()["entries"][0])
    assert set(re.findall(r'"(\w+)":', top)) >= set(run.to_dict()) - {"entries"}
