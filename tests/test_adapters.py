"""Adapters: CS231n cache style, mytorch-style layer objects, torch.autograd.Function."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk

rng = np.random.default_rng(0)


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, _ = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(0)


def affine_backward_buggy(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw, db * 2


AFFINE_INPUTS = (rng.standard_normal((2, 3, 2)), rng.standard_normal((6, 4)), rng.standard_normal(4))


def test_cache_style_layers_are_checked_and_inputs_keep_their_names():
    pair = gk.from_cache_style(affine_forward, affine_backward)
    result = gk.check(*pair, AFFINE_INPUTS)
    assert result.passed and [r.name for r in result.inputs] == ["x", "w", "b"]
    bad = gk.check(*gk.from_cache_style(affine_forward, affine_backward_buggy), AFFINE_INPUTS)
    assert [r.name for r in bad.inputs if not r.passed] == ["b"]


def test_cache_style_with_a_dict_param_like_cs231n_conv_param():
    def scale_forward(x, conv_param):
        return x * conv_param["scale"], (x, conv_param)

    def scale_backward(dout, cache):
        return (dout * cache[1]["scale"],)

    result = gk.check(
        *gk.from_cache_style(scale_forward, scale_backward), (np.ones(3),), {"conv_param": {"scale": 3.0}}
    )
    assert result.passed


class Linear:
    """mytorch style: forward(A) caches A; backward(dLdZ) sets dLdW, dLdb and returns dLdA."""

    def __init__(self, bug=False):
        self.W, self.b, self.bug = rng.standard_normal((2, 3)), rng.standard_normal((2, 1)), bug

    def forward(self, A):
        self.A = A
        return A @ self.W.T + self.b.T

    def backward(self, dLdZ):
        self.dLdW = dLdZ.T @ self.A * (2 if self.bug else 1)
        self.dLdb = dLdZ.sum(0)[:, None]
        return dLdZ @ self.W


def test_stateful_layer_objects_are_checked_through_their_gradient_attributes():
    layer = Linear()
    A = rng.standard_normal((5, 3))
    result = gk.check(*gk.from_layer_object(layer, {"W": "dLdW", "b": "dLdb"}), (A, layer.W, layer.b))
    assert result.passed and [r.name for r in result.inputs] == ["A", "W", "b"]
    buggy = Linear(bug=True)
    bad = gk.check(*gk.from_layer_object(buggy, ["W", "b"]), (A, buggy.W, buggy.b))
    assert [r.name for r in bad.inputs if not r.passed] == ["W"]


def test_layer_object_adapter_rejects_attributes_the_layer_does_not_have():
    with pytest.raises(gk.InvalidArgument, match="'V'"):
        gk.from_layer_object(Linear(), {"V": "dLdV"})


def test_autograd_functions_are_checked_and_mutating_grad_output_is_caught():
    torch = pytest.importorskip("torch")

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, dy):
            (x,) = ctx.saved_tensors
            return 2 * x * dy

    class SquareInPlace(Square):
        @staticmethod
        def backward(ctx, dy):
            (x,) = ctx.saved_tensors
            return dy.mul_(2 * x)

    x = torch.linspace(-1, 1, 7, dtype=torch.float64)
    assert gk.check(*gk.from_autograd_function(Square), (x,)).passed
    result = gk.check(*gk.from_autograd_function(SquareInPlace), (x,))
    assert result.finding("mutation").input == "grad_output"


def test_autograd_function_params_are_passed_positionally_after_the_inputs():
    torch = pytest.importorskip("torch")

    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, factor):
            ctx.factor = factor
            return x * factor

        @staticmethod
        def backward(ctx, dy):
            return dy * ctx.factor, None

    x = torch.randn(3, dtype=torch.float64)
    result = gk.check(*gk.from_autograd_function(Scale), (x,), {"factor": 3.0})
    assert result.passed, str(result)
