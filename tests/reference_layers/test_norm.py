"""layer_norm / batch_norm (training mode): torch at 1e-10, gk.check, gradient identities."""

from __future__ import annotations

import numpy as np
import pytest

from reference_layers import batch_norm_backward, layer_norm_backward

from .support import gk_check_property, requires_torch, torch_property


@requires_torch
def test_layer_norm_backward_matches_torch_over_one_and_two_normalized_axes():
    torch_property("layer_norm")()


@requires_torch
def test_batch_norm_backward_matches_torch_with_and_without_spatial_axes():
    torch_property("batch_norm")()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["layer_norm", "batch_norm"])
def test_normalizations_pass_gk_check_on_numpy(name, dtype):
    gk_check_property(name, dtype)


def test_batch_norm_input_gradient_sums_to_zero_per_channel():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(4, 3, 2, 2)), rng.normal(size=3), rng.normal(size=3)
    dx, dw, db = batch_norm_backward(rng.normal(size=x.shape), x, w, b)
    np.testing.assert_allclose(dx.sum(axis=(0, 2, 3)), 0.0, atol=1e-13)
    assert dw.shape == db.shape == (3,)


def test_layer_norm_input_gradient_sums_to_zero_over_the_normalized_axes():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(3, 4, 5)), rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    dx, dw, db = layer_norm_backward(rng.normal(size=x.shape), x, w, b)
    np.testing.assert_allclose(dx.sum(axis=(1, 2)), 0.0, atol=1e-13)
    assert dw.shape == db.shape == (4, 5)
