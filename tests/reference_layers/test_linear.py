"""linear and linear_sigmoid: torch at 1e-10, gk.check, and the seed's eqs. 38 and 43."""

from __future__ import annotations

import numpy as np
import pytest

from reference_layers import linear, linear_backward, linear_sigmoid_backward

from .support import gk_check_property, requires_torch, torch_property


@requires_torch
@pytest.mark.parametrize("name", ["linear", "linear_sigmoid"])
def test_linear_layers_match_torch_for_one_and_two_leading_axes(name):
    torch_property(name)()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["linear", "linear_sigmoid"])
def test_linear_layers_pass_gk_check_on_numpy(name, dtype):
    gk_check_property(name, dtype)


def test_linear_sigmoid_gradients_are_the_seeds_equations_38_and_43():
    rng = np.random.default_rng(0)
    a, w, b = rng.normal(size=(4, 3)), rng.normal(size=(2, 3)), rng.normal(size=2)
    dc_da = rng.normal(size=(4, 2))
    z = a @ w.T + b
    s = 1 / (1 + np.exp(-z))
    delta = dc_da * s * (1 - s)  # dC/da^l . sigma'(z^l), sigma' from eq. 19
    da, dw, db = linear_sigmoid_backward(dc_da, a, w, b)
    np.testing.assert_allclose(dw, delta.T @ a, rtol=1e-13)  # eq. 38
    np.testing.assert_allclose(da, delta @ w, rtol=1e-13)  # eq. 43
    np.testing.assert_allclose(db, delta.sum(axis=0), rtol=1e-13)


def test_linear_without_a_bias_returns_none_for_it():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(2, 5, 3)), rng.normal(size=(4, 3))
    y = linear(x, w, None)
    dx, dw, db = linear_backward(np.ones_like(y), x, w, None)
    assert y.shape == (2, 5, 4) and dx.shape == x.shape and dw.shape == w.shape and db is None
