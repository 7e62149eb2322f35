"""Results in notebooks: ``repr`` is a line or a few (name, backend, verdict, worst error, cause),
not a dataclass dump, and ``_repr_html_`` is the HTML report's section for that one result,
with everything from user code escaped."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gradcheck_kit as gk

X = (np.linspace(-1.0, 1.0, 3),)
SCRIPT_NAME = "<script>alert(1)</script>"


def _wrong(dy, x):
    return (dy,)


def _right(dy, x):
    return (dy * (1 - np.tanh(x) ** 2),)


def test_a_check_results_repr_is_one_line_with_verdict_worst_error_and_cause():
    failed = repr(gk.check(np.tanh, _wrong, X, name="tanh"))
    assert failed.startswith("<CheckResult tanh [numpy] FAILED: max rel err ") and "\n" not in failed
    assert " at x[" in failed and "; cause: x: missing chain-rule factor" in failed
    passed = repr(gk.check(np.tanh, _right, X, name="tanh"))
    assert passed.startswith("<CheckResult tanh [numpy] passed: max rel err ") and "cause" not in passed


def test_a_property_results_repr_names_the_minimal_case_and_its_cause_in_a_few_lines():
    cases = [gk.Case(X)]
    bad = gk.register("tanh", np.tanh, _wrong, cases=cases, into=gk.Registry())
    text = repr(gk.property_check(bad, max_examples=2, database=False))
    lines = text.splitlines()
    assert lines[0].startswith("<PropertyResult tanh [numpy] FAILED after ") and "max rel err" in lines[0]
    assert lines[1].startswith("  minimal case: tanh: x float64[3]") and lines[2].startswith("  cause: x: ")
    assert len(lines) == 3 and text.endswith(">")
    good = gk.register("tanh", np.tanh, _right, cases=cases, into=gk.Registry())
    assert "\n" not in repr(gk.property_check(good, max_examples=2, database=False))


def test_the_html_of_a_failed_result_is_its_report_section_with_user_text_escaped():
    pytest.importorskip("matplotlib")
    html = gk.check(np.tanh, _wrong, X, name=SCRIPT_NAME)._repr_html_()
    assert html.startswith('<div class="gradcheck-kit">') and html.endswith("</div>")
    assert "<table>" in html and "likely cause" in html and "data:image/png;base64," in html
    assert SCRIPT_NAME not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<html" not in html and "<style>" not in html  # a fragment for a notebook cell


def test_the_html_of_a_property_result_shows_its_replay_and_a_passing_one_just_its_row():
    spec = gk.register("tanh", np.tanh, _wrong, cases=[gk.Case(X)], into=gk.Registry())
    html = gk.property_check(spec, max_examples=2, database=False)._repr_html_()
    assert "<dt>replay</dt>" in html and "<dt>minimal case</dt>" in html
    passed = gk.check(np.tanh, _right, X, name="tanh")._repr_html_()
    assert passed.count("<tr") == 2 and "<section" not in passed  # the header and the row


def test_a_result_finds_the_report_renderer_without_the_report_being_imported_first():
    code = (
        "import sys, numpy as np, gradcheck_kit as gk\n"
        "r = gk.check(np.tanh, lambda dy, x: (dy,), (np.linspace(-1.0, 1.0, 3),))\n"
        "before = 'gradcheck_kit.report' in sys.modules\n"
        "print(before, r._repr_html_().startswith('<div class=\"gradcheck-kit\">'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "True"], done.stderr
