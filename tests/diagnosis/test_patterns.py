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


NEAR_ONE = [(1 + 3e-6, "1.000003 × numeric"), (1 + 5e-5, "1.00005 × numeric")]


@pytest.mark.parametrize(("factor", "words"), NEAR_ONE)
def test_a_factor_near_one_is_written_with_the_digits_that_tell_it_from_one(factor, words):
    x = np.random.default_rng(0).standard_normal((4, 5))
    result = gk.check(np.tanh, lambda dy, x: (factor * dy * (1 - np.tanh(x) ** 2),), (x,))
    assert words in result.cause and "≈ 1 ×" not in result.cause


def test_a_3d_weights_failing_axis_is_numbered_not_named_channels():
    # a (C, kh, kw) depthwise weight is not an (F, C, k) one: its axis 1 holds kernel rows
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))

    def backward(dy, x, w):
        dw = dy * x
        dw[:, :2] *= 1.5  # wrong in kernel rows 0 and 1 of every channel
        return dy * w, dw

    result = gk.check(lambda x, w: x * w, backward, (x, w))
    where = result.input("w").evidence["where"]
    assert "indices of axis 1 [0, 1]" in where and "channels" not in where


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


# -- causes seen in real code ----------------------------------------------------------------------


def _affine(x, w, b):
    return x @ w + b


def test_a_gradient_backward_never_writes_is_named():
    rng = np.random.default_rng(0)
    inputs = (rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2))

    def backward(dy, x, w, b):
        db = np.zeros_like(b)  # allocated, never filled in
        return dy @ w.T, x.T @ dy, db

    result = gk.check(_affine, backward, inputs)
    assert result.patterns == ["gradient_never_written"] and result.cause.startswith("b: backward never")


def test_an_input_the_forward_ignores_is_named_and_no_huge_relative_error_is_printed():
    rng = np.random.default_rng(1)

    def forward(x, w):
        return np.tanh(x)  # w never used

    def backward(dy, x, w):
        return dy * (1 - np.tanh(x) ** 2), 0.5 * dy * x

    result = gk.check(forward, backward, (rng.standard_normal((3, 4)), rng.standard_normal((3, 4))))
    assert result.patterns == ["forward_ignores_input"], str(result)
    assert "e+" not in str(result) and "numeric gradient 0" in str(result)
    assert result.to_dict()["inputs"][1]["max_rel_err"] is None  # infinite: null in JSON


def _batchnorm(x, gamma, beta):
    return gamma * (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) + beta


def _batchnorm_backward(term):
    def backward(dy, x, gamma, beta):
        n, inv = x.shape[0], 1 / np.sqrt(x.var(0) + 1e-5)
        xhat, dxhat = (x - x.mean(0)) * inv, dy * gamma
        mean = dxhat.sum(0) if term != "mean" else 0.0
        var = xhat * (dxhat * xhat).sum(0) if term != "var" else 0.0
        return inv / n * (n * dxhat - mean - var), (dy * xhat).sum(0), dy.sum(0)

    return backward


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
@pytest.mark.parametrize(
    ("term", "name"), [("mean", "missing_mean_term"), ("var", "missing_normalized_term")], ids=["mean", "var"]
)
def test_a_normalization_missing_a_term_along_its_axis_is_named(term, name, mode):
    rng = np.random.default_rng(2)
    inputs = (rng.standard_normal((6, 4)) * 2 + 1, rng.standard_normal(4), rng.standard_normal(4))
    result = gk.check(_batchnorm, _batchnorm_backward(term), inputs, mode=mode)
    assert result.patterns == [name] and "along axis 0" in result.cause, str(result)


def test_a_layer_norm_missing_its_mean_term_is_named_along_the_feature_axis():
    def layer_norm(x):
        return (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)

    def backward(dy, x):
        inv = 1 / np.sqrt(x.var(1, keepdims=True) + 1e-5)
        xhat = (x - x.mean(1, keepdims=True)) * inv
        return (inv * (dy - xhat * (dy * xhat).mean(1, keepdims=True)),)  # no - mean(dy)

    x = np.random.default_rng(3).standard_normal((3, 7))
    result = gk.check(layer_norm, backward, (x,))
    assert result.patterns == ["missing_mean_term"] and "along axis 1" in result.cause


# -- small cases cannot tell patterns apart ---------------------------------------------------


def _scaled_product(x, w):
    return x * w


def test_a_ratio_on_one_or_two_elements_is_not_called_a_constant_factor_unless_simple():
    def backward(dy, x, w, factor=115 / 67):
        return dy * w * factor, dy * x

    for size in (1, 2):
        rng = np.random.default_rng(size)
        result = gk.check(_scaled_product, backward, (rng.standard_normal(size), rng.standard_normal(size)))
        assert not result.passed and result.patterns == [], str(result)
    x, w = np.random.default_rng(9).standard_normal((2, 8))
    assert gk.check(_scaled_product, backward, (x, w)).patterns == ["constant_factor"]


def test_a_reflection_is_not_named_on_two_elements_where_it_is_a_coincidence():
    def backward(dy, x, w):
        return (dy * w)[..., ::-1], dy * x  # dx reflected along the last axis

    rng = np.random.default_rng(4)
    small = gk.check(_scaled_product, backward, (rng.standard_normal((1, 2)), rng.standard_normal((1, 2))))
    assert not small.passed and small.patterns == [], str(small)
    large = gk.check(_scaled_product, backward, (rng.standard_normal((1, 8)), rng.standard_normal((1, 8))))
    assert large.patterns == ["reflected"], str(large)


def test_a_minimal_property_case_too_small_to_name_the_bug_is_diagnosed_on_a_larger_case():
    import reference_layers

    spec = gk.registry.get("conv2d")

    def backward(dy, x, w, b, **params):
        dx, dw, db = reference_layers.conv2d_backward(dy, x, w, b, **params)
        return dx, dw * 1.01, db

    name = "conv2d-dw-times-1.01"
    gk.register(name, forward=spec.forward, backward=backward, cases=spec.cases, replace=True)
    try:
        result = gk.property_check(name, max_examples=30)
    finally:
        gk.registry.remove(name)
    assert not result.passed and result.check.patterns == []  # a 1x1 kernel: its own rotation
    assert result.larger_check is not None and result.larger_check.patterns == ["constant_factor"]
    assert "on a larger failing case" in result.cause and "1.01" in result.cause
