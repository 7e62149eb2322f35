"""The HTML report and its pictures: self-contained, escaped, a picture per failing input, a note
instead of pictures without matplotlib; heatmap panels for tensors of every rank."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk
from gradcheck_kit.registry import Registry
from gradcheck_kit.report import Entry, Run, plots, render_html

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"
HOSTILE = '<img src=x onerror="alert(1)">'
X = np.linspace(-1.0, 1.0, 12).reshape(3, 4)


def _wrong_backward(dy, x):
    return (dy * np.tanh(x),)


def _chatty_cause_backward(dy, x):
    raise RuntimeError("</pre><script>alert('traceback')</script>")


@pytest.fixture(scope="module")
def run():
    into = Registry()
    wrong = gk.register(HOSTILE, np.tanh, _wrong_backward, cases=[gk.Case((X,))], into=into)
    raising = gk.register("raises", np.tanh, _chatty_cause_backward, cases=[gk.Case((X,))], into=into)
    entries = [
        Entry.from_result(gk.property_check(s, max_examples=2, database=False)) for s in (wrong, raising)
    ]
    return Run(entries, seed=0, profile="ci", backends=["numpy"], targets=["<b>target</b>"])


def test_user_text_is_escaped_everywhere(run):
    page = render_html(run)
    assert "<script" not in page and "onerror=" not in page.replace("onerror=&quot;", "")
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;" in page and "&lt;b&gt;target&lt;/b&gt;" in page


def test_the_report_is_self_contained_with_a_heatmap_and_a_taylor_plot_per_failing_input(run):
    page = render_html(run)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert page.count("data:image/png;base64,") == 2 and 'src="http' not in page
    assert 'id="entry-0"' in page and 'href="#entry-0"' in page


def test_without_matplotlib_the_report_says_so_instead_of_pictures(run, monkeypatch):
    monkeypatch.setattr(plots, "available", lambda: False)
    page = render_html(run)
    assert "data:image/png" not in page and "matplotlib is not installed" in page


@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4, 5), (20, 1, 2, 2)])
def test_heatmaps_are_drawn_for_tensors_of_every_rank(shape):
    errors = np.random.default_rng(0).random(shape)
    errors.flat[0] = np.nan
    png = plots.error_heatmap("x", errors, errors > 0.5)
    assert png.startswith(PNG)


def test_panels_show_the_last_two_axes_of_each_leading_index_up_to_a_limit():
    shown, left_out = plots.panels(np.zeros((20, 1, 2, 3)))
    assert len(shown) == plots.MAX_PANELS and left_out == 20 - plots.MAX_PANELS
    assert shown[1][0] == "[1, 0, :, :]" and shown[1][1].shape == (2, 3)


def test_the_taylor_plot_survives_zero_and_missing_residuals():
    assert plots.taylor_plot("x", [1.0, 0.5, 0.25], [1e-3, 0.0, None], [None, float("nan")]).startswith(PNG)


def test_the_checks_beyond_the_first_order_get_a_short_section_with_their_cause_and_cost():
    def jvp(tangents, x):
        return 2 * tangents[0] * (1 - np.tanh(x) ** 2)  # twice the true tangent

    result = gk.check(np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), (X,), jvp=jvp, name=HOSTILE)
    page = render_html(Run([Entry.from_result(result)], seed=0))
    assert "<h3>checks beyond the first order</h3>" in page and "<td>forward_mode</td><td>failed</td>" in page
    assert "jvp disagrees with finite differences" in page and "jvp 3" in page and HOSTILE not in page
