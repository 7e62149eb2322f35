"""Projections over an input whose elements span many orders of magnitude: the steps follow the
input's scale, so elements far below it are judged apart, each stepped by its own magnitude."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk


def layer_norm(x):
    centred = x - x.mean(-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-30)


def layer_norm_backward(dy, x, *, rows=slice(0, 0), factor=1.0):
    centred = x - x.mean(-1, keepdims=True)
    inv = 1 / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-30)
    normed = centred * inv
    dx = inv * (dy - dy.mean(-1, keepdims=True) - normed * (dy * normed).mean(-1, keepdims=True))
    dx[rows] *= factor
    return (dx,)


def mixed_rows(seed, shape=(40, 16)):
    """Rows at 1e-6, at 1e4 and at 1: more than 512 elements, so the default mode projects."""
    x = np.random.default_rng(seed).standard_normal(shape)
    quarter = shape[0] // 4
    x[:quarter] *= 1e-6
    x[quarter : 2 * quarter] *= 1e4
    return x


@pytest.mark.parametrize("shape", [(40, 16), (8, 128)])
@pytest.mark.parametrize("seed", range(3))
def test_a_correct_layer_norm_over_rows_at_1e_minus_6_and_1e4_passes(seed, shape):
    result = gk.check(layer_norm, layer_norm_backward, (mixed_rows(seed, shape),), seed=seed)
    assert result.passed, str(result)
    assert "far below the input's scale" in result.inputs[0].note


@pytest.mark.parametrize(
    ("rows", "label"),
    [(0, "a row at 1e-6"), (10, "a row at 1e4"), (39, "a row at 1")],
)
@pytest.mark.parametrize("seed", range(2))
def test_a_gradient_one_percent_off_in_one_row_fails_whatever_the_rows_scale(seed, rows, label):
    x = mixed_rows(seed)
    result = gk.check(
        layer_norm, lambda dy, x: layer_norm_backward(dy, x, rows=rows, factor=1.01), (x,), seed=seed
    )
    assert not result.passed, label


def test_a_failure_among_the_small_elements_is_reported_with_numbers_at_their_own_scale():
    x = mixed_rows(0)
    result = gk.check(layer_norm, lambda dy, x: layer_norm_backward(dy, x, rows=0, factor=1.01), (x,))
    report = result.inputs[0]
    assert report.worst_index[0] == 0  # the tiny row
    assert report.max_rel_err == pytest.approx(0.01, rel=0.1)


def test_a_failure_among_the_elements_at_scale_is_localized_in_them():
    x = mixed_rows(1)
    result = gk.check(
        layer_norm, lambda dy, x: layer_norm_backward(dy, x, rows=10, factor=1.01), (x,), seed=1
    )
    report = result.inputs[0]
    assert not result.passed
    assert report.worst_index[0] == 10
    assert report.failing > 0


def rms_norm(x, g):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-30) * g


def rms_norm_backward(dy, x, g, *, dg_factor=1.0):
    r = np.sqrt((x * x).mean(-1, keepdims=True) + 1e-30)
    dx = g * dy / r - x * (g * dy * x).sum(-1, keepdims=True) / (x.shape[-1] * r**3)
    return dx, dg_factor * (dy * x / r).sum(0)


def test_a_parameter_drowned_by_a_huge_input_gradient_is_judged_alone():
    # dx peaks at 1e6 (rows at 1e-6), dg at ~10: even rescaled 1000x, x's share of a joint
    # direction hides a 1% error in dg
    x, g = mixed_rows(0, (48, 16)), 1 + 0.1 * np.random.default_rng(1).standard_normal(16)
    assert gk.check(rms_norm, rms_norm_backward, (x, g)).passed
    wrong = gk.check(rms_norm, lambda dy, x, g: rms_norm_backward(dy, x, g, dg_factor=1.01), (x, g))
    assert [report.passed for report in wrong.inputs] == [True, False]


@pytest.mark.parametrize("seed", range(2))
def test_one_wrong_element_among_hundreds_of_near_zeros_is_found_not_sampled_past(seed):
    # rows at 1e-6 beside rows at 1e4: the small ones count as zeros (a step crosses them), more
    # than the 128 probed one by one; the wrong one must be among those probed
    x = mixed_rows(seed, (8, 96))

    def backward(dy, x, wrong=1.0):
        dx = dy * (1 - np.tanh(x) ** 2)
        dx[1, 3] *= wrong
        return (dx,)

    assert gk.check(np.tanh, backward, (x,), seed=seed).passed
    assert not gk.check(np.tanh, lambda dy, x: backward(dy, x, 1.1), (x,), seed=seed).passed
