"""sigmoid, tanh, relu, leaky_relu: torch at 1e-10, gk.check, overflow and kinks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from reference_layers import leaky_relu_backward, relu_backward, sigmoid, sigmoid_backward

from .support import gk_check_property, requires_torch, torch_property

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu"]


@requires_torch
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_forward_and_backward_match_torch_for_every_shape_and_layout(name):
    torch_property(name)()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_pass_gk_check_on_numpy(name, dtype):
    gk_check_property(name, dtype)


def test_sigmoid_neither_overflows_nor_loses_its_slope_for_large_inputs():
    x = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = sigmoid(x)
        (dx,) = sigmoid_backward(np.ones_like(x), x)
    np.testing.assert_allclose(
        y, [0.0, np.exp(-40.0) / (1 + np.exp(-40.0)), 0.5, 1 / (1 + np.exp(-40.0)), 1.0]
    )
    np.testing.assert_allclose(dx[1:4], [np.exp(-40.0), 0.25, np.exp(-40.0)], rtol=1e-14)  # not 1 - 1 = 0


@requires_torch
def test_relu_and_leaky_relu_take_torchs_slope_at_the_kink():
    import torch

    x = np.array([-1.0, 0.0, 1.0])
    t = torch.tensor(x, requires_grad=True)
    (relu_grad,) = torch.autograd.grad(torch.relu(t).sum(), t)
    (leaky_grad,) = torch.autograd.grad(torch.nn.functional.leaky_relu(t, 0.2).sum(), t)
    np.testing.assert_array_equal(relu_backward(np.ones(3), x)[0], relu_grad.numpy())
    np.testing.assert_array_equal(
        leaky_relu_backward(np.ones(3), x, negative_slope=0.2)[0], leaky_grad.numpy()
    )
