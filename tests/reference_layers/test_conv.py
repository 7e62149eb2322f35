"""conv1d / conv2d: torch at 1e-10 for every drawn geometry, gk.check, and the seed's formulas."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk
from reference_layers import conv1d, conv1d_backward, conv2d, conv2d_backward

from .support import check_passes, gk_check_property, requires_torch, torch_property


@requires_torch
def test_conv2d_backward_matches_torch_for_every_stride_padding_dilation_and_groups():
    torch_property("conv2d")()


@requires_torch
def test_conv2d_with_an_untied_bias_matches_torch_plus_a_bias_per_filter_and_position():
    torch_property("conv2d_untied")()


@requires_torch
def test_conv1d_backward_matches_torch_for_every_stride_padding_dilation_and_groups():
    torch_property("conv1d")()


@requires_torch
def test_conv1d_with_an_untied_bias_matches_torch_plus_a_bias_per_filter_and_position():
    torch_property("conv1d_untied")()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["conv1d", "conv1d_untied", "conv2d", "conv2d_untied"])
def test_convolutions_pass_gk_check_on_numpy(name, dtype):
    gk_check_property(name, dtype)


def test_conv2d_gradients_follow_the_simplepyml_seed_formulas():
    # seed: dL/db = dL/dz (untied); dL/dK[i, c] = X[c] valid-correlated with dL/dz[i];
    # dL/dX[c] = sum_i dL/dz[i] full-convolved with K[i, c] (the 180°-rotated kernel, correlated)
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(1, 2, 3, 3)), rng.normal(size=(2, 2, 2, 2)), rng.normal(size=(2, 2, 2))
    dz = rng.normal(size=(1, 2, 2, 2))
    dx, dw, db = conv2d_backward(dz, x, w, b, bias="untied")
    np.testing.assert_allclose(db, dz[0])
    for i in range(2):
        for c in range(2):
            expected = [
                [np.sum(x[0, c, p : p + 2, q : q + 2] * dz[0, i]) for q in range(2)] for p in range(2)
            ]
            np.testing.assert_allclose(dw[i, c], expected)
    padded = np.pad(dz[0], ((0, 0), (1, 1), (1, 1)))
    rotated = w[:, :, ::-1, ::-1]
    for c in range(2):
        expected = [
            [np.sum(padded[:, p : p + 2, q : q + 2] * rotated[:, c]) for q in range(3)] for p in range(3)
        ]
        np.testing.assert_allclose(dx[0, c], expected)


def test_conv2d_forward_is_the_seeds_valid_cross_correlation_plus_an_untied_bias():
    rng = np.random.default_rng(4)
    x, w, b = rng.normal(size=(1, 2, 3, 3)), rng.normal(size=(2, 2, 2, 2)), rng.normal(size=(2, 2, 2))
    y = conv2d(x, w, b, bias="untied")
    for i in range(2):
        for p in range(2):
            for q in range(2):
                assert y[0, i, p, q] == pytest.approx(
                    b[i, p, q] + np.sum(x[0, :, p : p + 2, q : q + 2] * w[i])
                )


def test_conv1d_and_conv2d_keep_float32_inputs_in_float32():
    rng = np.random.default_rng(5)
    x, w, b = (rng.normal(size=s).astype(np.float32) for s in ((2, 2, 6), (3, 2, 3), (3,)))
    y = conv1d(x, w, b, stride=2, padding=1)
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv1d_backward(y, x, w, b, stride=2, padding=1))


def test_conv2d_accepts_per_axis_tuples_and_no_bias():
    rng = np.random.default_rng(6)
    x, w = rng.normal(size=(2, 4, 7, 5)), rng.normal(size=(4, 2, 3, 2))
    params = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    assert conv2d(x, w, None, **params).shape == (2, 4, 4, 3)
    dx, dw, db = conv2d_backward(np.ones((2, 4, 4, 3)), x, w, None, **params)
    assert dx.shape == x.shape and dw.shape == w.shape and db is None
    check_passes("conv2d", gk.Case((x, w, rng.normal(size=4)), params))


def test_conv2d_backward_leaves_its_inputs_untouched_on_non_contiguous_views():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 9, 8))[:, :, ::-1, ::2]
    w = np.asfortranarray(rng.normal(size=(2, 3, 3, 3)))
    before = x.copy(), w.copy()
    dx, dw, _ = conv2d_backward(np.ones((2, 2, 4, 1)), x, w, None, stride=2)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(w, before[1])
    contiguous = conv2d_backward(np.ones((2, 2, 4, 1)), x.copy(), w.copy(), None, stride=2)
    np.testing.assert_array_equal(dx, contiguous[0])
    np.testing.assert_array_equal(dw, contiguous[1])
