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


# -- layer objects as a training framework uses them -------------------------------------------


class Conv1dStride1:
    """mytorch style: gradients created in __init__ and accumulated (zero_grads() zeroes them)."""

    def __init__(self, in_channels, out_channels, kernel_size, seed=0):
        r = np.random.default_rng(seed)
        self.W = r.standard_normal((out_channels, in_channels, kernel_size))
        self.b = r.standard_normal(out_channels)
        self.dLdW, self.dLdb = np.zeros(self.W.shape), np.zeros(self.b.shape)

    def forward(self, A):
        self.A = A
        k = self.W.shape[2]
        windows = np.stack([A[:, :, i : i + A.shape[2] - k + 1] for i in range(k)], axis=-1)
        return np.einsum("nctk,fck->nft", windows, self.W) + self.b[None, :, None]

    def backward(self, dLdZ):
        k = self.W.shape[2]
        windows = np.stack([self.A[:, :, i : i + self.A.shape[2] - k + 1] for i in range(k)], axis=-1)
        self.dLdW += np.einsum("nctk,nft->fck", windows, dLdZ)
        self.dLdb += dLdZ.sum(axis=(0, 2))
        dLdA = np.zeros_like(self.A)
        for i in range(k):
            dLdA[:, :, i : i + dLdZ.shape[2]] += np.einsum("nft,fc->nct", dLdZ, self.W[:, :, i])
        return dLdA


class Downsample1d:
    def __init__(self, factor):
        self.factor = factor

    def forward(self, A):
        self.width = A.shape[2]
        return A[:, :, :: self.factor]  # a view: idiomatic and correct

    def backward(self, dLdZ):
        dLdA = np.zeros((*dLdZ.shape[:2], self.width))
        dLdA[:, :, :: self.factor] = dLdZ
        return dLdA


class Conv1d:
    """Weights live one level down, on a member object."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, seed=0):
        self.conv1d_stride1 = Conv1dStride1(in_channels, out_channels, kernel_size, seed)
        self.downsample1d = Downsample1d(stride)

    def forward(self, A):
        return self.downsample1d.forward(self.conv1d_stride1.forward(A))

    def backward(self, dLdZ):
        return self.conv1d_stride1.backward(self.downsample1d.backward(dLdZ))


class RebindingLinear:
    """dW/db naming; backward fills the old buffers with 0, then rebinds new ones."""

    def __init__(self):
        self.W, self.b = rng.standard_normal((3, 4)), rng.standard_normal(3)
        self.dW, self.db = np.zeros((3, 4)), np.zeros(3)

    def forward(self, x):
        self.x = x
        return x @ self.W.T + self.b

    def backward(self, dy):
        self.dW.fill(0)
        self.dW = dy.T @ self.x
        self.db = dy.sum(0)
        return dy @ self.W


class BatchNorm1d:
    """forward(Z, eval=False): the keyword selects the mode; train mode updates running stats."""

    def __init__(self, features):
        self.BW, self.Bb = rng.standard_normal(features), rng.standard_normal(features)
        self.dLdBW, self.dLdBb = np.zeros(features), np.zeros(features)
        self.running_M, self.running_V = rng.standard_normal(features), 1 + rng.random(features)

    def forward(self, Z, eval=False):
        if eval:
            self.mean, self.var, self.eval = self.running_M, self.running_V, True
        else:
            self.mean, self.var, self.eval = Z.mean(0), Z.var(0), False
            self.running_M = 0.9 * self.running_M + 0.1 * self.mean
            self.running_V = 0.9 * self.running_V + 0.1 * self.var
        self.Z, self.NZ = Z, (Z - self.mean) / np.sqrt(self.var + 1e-8)
        return self.BW * self.NZ + self.Bb

    def backward(self, dLdBZ):
        self.dLdBW += (dLdBZ * self.NZ).sum(0)
        self.dLdBb += dLdBZ.sum(0)
        dNZ = dLdBZ * self.BW
        inv = 1 / np.sqrt(self.var + 1e-8)
        if self.eval:
            return dNZ * inv
        n = self.Z.shape[0]
        return inv / n * (n * dNZ - dNZ.sum(0) - self.NZ * (dNZ * self.NZ).sum(0))


def _state(layer):
    """Every attribute of a layer and its member objects, arrays copied."""
    out = {}
    for name, value in vars(layer).items():
        out[name] = _state(value) if hasattr(value, "__dict__") else np.copy(value)
    return out


def _same_state(a, b):
    return a.keys() == b.keys() and all(
        _same_state(a[k], b[k]) if isinstance(a[k], dict) else np.array_equal(a[k], b[k]) for k in a
    )


def test_accumulating_gradient_attributes_are_zeroed_before_each_backward_and_copied_after():
    layer = Conv1dStride1(2, 3, 3)
    layer.dLdW += 5.0  # left over from a training step: zero_grads() would clear it
    pair = gk.from_layer_object(layer)
    A = rng.standard_normal((2, 2, 7))
    result = gk.check(*pair, (A, *pair.weights))
    assert result.passed, str(result)
    assert [r.name for r in result.inputs] == ["A", "W", "b"]


def test_weights_on_a_member_object_are_found_and_where_is_said():
    layer = Conv1d(2, 3, 3, stride=2)
    pair = gk.from_layer_object(layer)
    assert pair.weight_paths == ("conv1d_stride1.W", "conv1d_stride1.b")
    assert "conv1d_stride1.dLdW" in pair.describe()
    result = gk.check(*pair, (rng.standard_normal((2, 2, 9)), *pair.weights))
    assert result.passed, str(result)
    explicit = gk.from_layer_object(layer, {"W": "dLdW", "b": "dLdb"})
    assert explicit.weight_paths == pair.weight_paths


def test_a_weight_that_cannot_be_found_is_refused_naming_the_candidates():
    with pytest.raises(gk.InvalidArgument, match=r"'V'.*conv1d_stride1\.W"):
        gk.from_layer_object(Conv1d(2, 3, 3, stride=2), {"V": "dLdV"})


def test_the_dw_naming_family_and_rebound_buffers_work_without_spelling_them():
    layer = RebindingLinear()
    pair = gk.from_layer_object(layer)
    assert pair.gradient_paths == ("dW", "db")
    result = gk.check(*pair, (rng.standard_normal((5, 4)), *pair.weights))
    assert result.passed, str(result)


def test_keyword_params_reach_forward_and_the_callers_object_is_left_exactly_as_it_was():
    layer = BatchNorm1d(4)
    before = _state(layer)
    pair = gk.from_layer_object(layer)
    assert pair.weight_paths == ("BW", "Bb")  # the running statistics have no gradient: not weights
    Z = rng.standard_normal((6, 4))
    for mode in (False, True):
        result = gk.check(*pair, (Z, *pair.weights), {"eval": mode})
        assert result.passed, str(result)
    assert _same_state(before, _state(layer))


def test_eval_mode_reaches_the_layer_so_a_train_mode_backward_fails_there():
    class TrainOnlyBackward(BatchNorm1d):
        def backward(self, dLdBZ):
            self.eval = False  # forgets the mode: the train-mode formula in eval mode
            return super().backward(dLdBZ)

    layer = TrainOnlyBackward(4)
    pair = gk.from_layer_object(layer)
    Z = rng.standard_normal((6, 4))
    assert gk.check(*pair, (Z, *pair.weights), {"eval": False}).passed
    assert not gk.check(*pair, (Z, *pair.weights), {"eval": True}).passed


def test_activations_whose_backward_returns_the_local_derivative_are_chained():
    class Tanh:
        def forward(self, Z):
            self.A = np.tanh(Z)
            return self.A

        def backward(self):  # dA/dZ, multiplied by the caller (some course years' convention)
            return 1 - self.A**2

    assert gk.check(*gk.from_layer_object(Tanh()), (rng.standard_normal((3, 4)),)).passed


class _CrossEntropyLoss:  # mytorch: forward(A, Y) -> loss, backward() -> dLdA alone
    def forward(self, A, Y):
        self.A, self.Y = A, Y
        e = np.exp(A - A.max(1, keepdims=True))
        self.softmax = e / e.sum(1, keepdims=True)
        return np.asarray((-Y * np.log(self.softmax)).sum() / A.shape[0])

    def backward(self):
        return (self.softmax - self.Y) / self.A.shape[0]


class _LossTimesFive(_CrossEntropyLoss):
    def backward(self):
        return 5 * super().backward()


def test_a_layer_whose_backward_returns_one_array_for_two_inputs_differentiates_the_first():
    rng = np.random.default_rng(0)
    A, Y = rng.normal(size=(5, 4)), np.eye(4)[rng.integers(0, 4, size=5)]
    assert gk.check(*gk.from_layer_object(_CrossEntropyLoss()), (A, Y), wrt=["A"]).passed
    assert gk.check(*gk.from_layer_object(_CrossEntropyLoss()), (A,), {"Y": Y}).passed
    wrong = gk.check(*gk.from_layer_object(_LossTimesFive()), (A, Y), wrt=["A"])
    assert not wrong.passed and "constant factor" in wrong.cause
    unsaid = gk.check(*gk.from_layer_object(_CrossEntropyLoss()), (A, Y))  # Y is float: say wrt=
    assert not unsaid.passed and "wrt=" in unsaid.cause
