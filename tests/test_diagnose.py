"""Diagnosis: each named pattern is named for its planted bug, and for nothing else."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk
from tests.support.zoo import by_name, specimens

NAMED = [s for s in specimens() if s.buggy and s.cause]
UNNAMED = [s for s in specimens() if s.buggy and not s.cause]
CONTRACT_NAMES = {"mutation": "grad_output_mutated"}


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("specimen", NAMED, ids=lambda s: s.name)
def test_the_planted_bug_is_named_and_nothing_else(specimen, dtype, mode):
    result = gk.check(specimen.forward, specimen.backward, specimen.inputs(dtype), specimen.params, mode=mode)
    assert result.patterns == [CONTRACT_NAMES.get(specimen.cause, specimen.cause)], str(result)


@pytest.mark.parametrize("specimen", UNNAMED, ids=lambda s: s.name)
def test_bugs_that_fit_no_pattern_get_no_name_but_a_location(specimen):
    result = gk.check(specimen.forward, specimen.backward, specimen.inputs(), specimen.params)
    assert not result.passed and result.patterns == []
    assert "no known bug pattern fits" in result.cause


@pytest.mark.parametrize("specimen", [s for s in specimens() if not s.buggy], ids=lambda s: s.name)
def test_correct_layers_get_no_diagnosis(specimen):
    result = gk.check(specimen.forward, specimen.backward, specimen.inputs(), specimen.params)
    assert result.passed and result.patterns == [] and result.cause is None


def test_a_constant_factor_is_reported_with_its_value_and_fraction():
    s = by_name("softmax-ce-missing-mean")
    result = gk.check(s.forward, s.backward, s.inputs())
    pattern = result.input("logits").evidence["patterns"][0]
    assert pattern["details"]["fraction"] == "4" and "4 × numeric" in result.cause  # batch of 4


def test_the_failure_cause_line_names_the_input_and_the_pattern():
    s = by_name("conv2d-dw-flipped")
    result = gk.check(s.forward, s.backward, s.inputs(), s.params)
    assert result.cause.startswith("w: dW flipped")
    assert "likely cause: dW flipped" in str(result)


def test_a_wrong_gradient_shows_taylor_order_one():
    s = by_name("gaussian-dsigma-typo")
    result = gk.check(s.forward, s.backward, s.inputs())
    orders = result.input("sigma").taylor_orders
    assert orders and abs(float(np.median(orders)) - 1.0) < 0.3


def test_errors_confined_to_some_batch_items_are_localized():
    def forward(x):
        return np.sin(x)

    def backward(dy, x):
        dx = dy * np.cos(x)
        dx[1:] *= 1.5  # items 1 and 2 wrong
        dx[1:, 0, 0, 0] += 0.5  # and not by a constant factor overall
        return (dx,)

    x = np.random.default_rng(0).standard_normal((3, 2, 3, 3))
    report = gk.check(forward, backward, (x,)).input("x")
    assert "only in batch items [1, 2]" in report.evidence["where"]


def test_errors_only_off_the_stride_grid_are_localized_for_a_strided_layer_only():
    def forward(x, stride=1):
        return np.sin(x)

    def backward(dy, x, stride=1):
        dx = dy * np.cos(x)
        dx[:, :, 1::2, :] += 0.3
        dx[:, :, :, 1::2] += 0.3
        return (dx,)

    x = np.random.default_rng(1).standard_normal((1, 1, 6, 6))
    report = gk.check(forward, backward, (x,), {"stride": 2}, wrt=0).input("x")
    assert report.evidence["where"] == "only off the stride-2 grid"
    unstrided = gk.check(forward, backward, (x,), {}, wrt=0).input("x")
    assert "grid" not in unstrided.evidence["where"]  # no grid the layer does not have


def test_border_only_errors_report_the_band_width():
    s = by_name("conv2d-border-zeroed")
    result = gk.check(s.forward, s.backward, s.inputs(), s.params)
    assert result.input("x").evidence["patterns"][0]["details"]["width"] == 1
