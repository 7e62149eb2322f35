"""The parts of a check beyond the first-order gradient (result.checks): second order, forward
mode, batched, undefined grads. Correct Functions pass each; a bug planted in one fails that
part, with a cause naming it; each part has its own cost."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradcheck_kit as gk  # noqa: E402
from tests.support import functions as fz  # noqa: E402

X = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64).reshape(2, 3)
W = torch.linspace(0.5, 2.0, 6, dtype=torch.float64).reshape(2, 3)
V = torch.linspace(-2.0, 2.0, 5, dtype=torch.float64)


def check(function, inputs, params=None, **options):
    return gk.check(*gk.from_autograd_function(function), inputs, params, **options)


def test_a_correct_function_passes_every_part_it_offers_each_with_its_cost():
    result = check(fz.Mul, (X, W))
    assert result.passed, str(result)
    assert list(result.checks) == ["second_order", "forward_mode", "batched"]
    for part in result.checks.values():
        assert part.status == "passed" and part.calls and part.seconds > 0
    assert result.checks["forward_mode"].calls["jvp"] == 3 and result.checks["batched"].calls["vmap"] == 2


# -- second order ---------------------------------------------------------------------------------


def test_pytorch_76185s_saved_intermediate_passes_first_order_and_fails_second_order():
    inp = torch.rand(10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    result = check(fz.SavedIntermediate, (inp,))
    assert all(r.passed for r in result.inputs)
    part = result.checks["second_order"]
    assert part.status == "failed" and result.cause.startswith("second_order: double backward w.r.t. inp")
    assert "kept on ctx" in part.cause and part.result is not None and part.result.patterns


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_on_a_kink_backward_jumps_there_and_the_second_order_passes_counting_the_jumps(dtype):
    x = torch.tensor([[-1.0, 0.0, 0.5], [0.0, 1.5, -0.25]], dtype=dtype)  # two on relu's kink
    result = check(fz.ReluCube, (x,))
    part = result.checks["second_order"]
    assert result.passed and part.status == "passed", str(result)
    assert part.result.input("x").kinks >= 2  # where backward jumps: not differentiable, not judged


def test_a_wrong_double_backward_at_a_kink_still_fails():
    x = torch.tensor([[-1.0, 0.0, 0.5], [0.0, 1.5, -0.25]], dtype=torch.float64)
    part = check(fz.ReluCubeSaved, (x,)).checks["second_order"]
    assert part.status == "failed" and "kept on ctx" in part.cause


def test_a_once_differentiable_backward_skips_the_second_order_and_order_2_insists():
    skipped = check(fz.OnceTanh, (V,))
    assert skipped.passed and skipped.checks["second_order"].status == "skipped"
    assert "once_differentiable" in skipped.checks["second_order"].message
    insisted = check(fz.OnceTanh, (V,), order=2)
    assert not insisted.passed and "cannot be checked" in insisted.cause


def test_order_1_checks_the_first_order_only():
    assert check(fz.SavedIntermediate, (V.abs() + 0.5,), order=1).checks == {}


def test_a_backward_computed_outside_autograd_has_no_second_order_to_check():
    class ViaNumpy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.exp()

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return torch.from_numpy(np.exp(x.numpy()) * grad.detach().numpy())

    part = check(ViaNumpy, (V,)).checks["second_order"]
    assert part.status == "skipped" and "no autograd graph" in part.message


def test_a_numpy_double_backward_is_checked_and_a_wrong_one_diagnosed():
    def forward(x):
        return np.tanh(x)

    def backward(grad, x):
        return (grad * (1 - np.tanh(x) ** 2),)

    def double_backward(grad_grads, grad, x, sign=-1.0):
        t = np.tanh(x)
        return (grad_grads[0] * grad * sign * 2 * t * (1 - t**2),), (grad_grads[0] * (1 - t**2),)

    x = np.linspace(-1.0, 1.0, 5)
    assert gk.check(forward, backward, (x,), double_backward=double_backward).checks["second_order"].passed

    def wrong(grad_grads, grad, x):
        return double_backward(grad_grads, grad, x, sign=1.0)

    part = gk.check(forward, backward, (x,), double_backward=wrong).checks["second_order"]
    assert part.status == "failed" and "sign flipped" in part.cause


# -- forward mode ---------------------------------------------------------------------------------


def test_a_jvp_twice_too_large_fails_forward_mode_naming_the_factor():
    result = check(fz.MulJvpTwice, (X, W))
    part = result.checks["forward_mode"]
    assert part.status == "failed"
    assert result.cause.startswith("forward_mode: jvp disagrees with finite differences")
    assert "2× what backward gives along every tangent" in part.cause


def test_a_jvp_wrong_for_one_input_names_that_input():
    class WrongForW(fz.Mul):
        @staticmethod
        def jvp(ctx, tx, tw):
            x, w = ctx.saved_tensors
            return 2 * x * w * tx + x * tw

    cause = check(WrongForW, (X, W), order=1).checks["forward_mode"].cause
    assert "wrong along the tangent of w (" in cause and "tangent of x" not in cause


def test_a_numpy_layer_registers_its_jvp_through_check():
    def jvp(tangents, x, w):
        return tangents[0] * w + x * tangents[1]

    x, w = X.numpy(), W.numpy()
    result = gk.check(np.multiply, lambda g, x, w: (g * w, g * x), (x, w), jvp=jvp)
    assert result.checks["forward_mode"].passed, str(result)
    bad = gk.check(np.multiply, lambda g, x, w: (g * w, g * x), (x, w), jvp=lambda t, x, w: 2 * jvp(t, x, w))
    assert not bad.checks["forward_mode"].passed


def test_the_dot_product_test_catches_a_jvp_off_far_below_finite_difference_resolution():
    class Slightly(fz.Mul):
        @staticmethod
        def jvp(ctx, tx, tw):
            x, w = ctx.saved_tensors
            return (2 * x * w * tx + x * x * tw) * (1 + 1e-9)

    part = check(Slightly, (X, W), order=1).checks["forward_mode"]
    assert part.status == "failed" and "within finite-difference resolution" in part.cause


# -- batched --------------------------------------------------------------------------------------


def test_a_backward_calling_item_fails_under_vmap_with_the_reason():
    part = check(fz.MulItem, (X, W), order=1).checks["batched"]
    assert part.status == "failed" and part.cause.startswith("backward under vmap raised RuntimeError")
    assert ".item()" in part.cause


def test_a_vmap_rule_that_ignores_the_batch_axis_fails_against_the_loop():
    class Sum(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return x.sum(-1)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.shape = inputs[0].shape

        @staticmethod
        def backward(ctx, grad):
            return grad.unsqueeze(-1).expand(ctx.shape)

        @staticmethod
        def vmap(info, in_dims, x):
            return x.sum(-1) * 0 + x[0].sum(-1), 0  # every item gets item 0's sum

    part = check(Sum, (X,), order=1).checks["batched"]
    assert part.status == "failed" and "forward's output differs from the loop over inputs" in part.cause


# -- undefined grads ------------------------------------------------------------------------------


def test_a_backward_crashing_on_a_none_grad_fails_naming_that_grad_output():
    result = check(fz.SinCosNoneCrash, (V,))
    assert result.checks["undefined_grad"].status == "failed"
    assert result.cause.startswith("undefined_grad: backward raised TypeError")
    assert "when grad_output[0] was undefined" in result.cause
    assert check(fz.SinCos, (V,)).checks["undefined_grad"].passed


def test_a_backward_that_treats_none_as_something_else_than_zero_fails():
    class Off(fz.SinCos):
        @staticmethod
        def backward(ctx, grad_sin, grad_cos):
            (x,) = ctx.saved_tensors
            grad_cos = -torch.ones_like(x) if grad_cos is None else grad_cos  # None is not -1
            return x.cos() * (grad_sin if grad_sin is not None else 0) - x.sin() * grad_cos

    cause = check(Off, (V,), order=1).checks["undefined_grad"].cause
    assert cause.startswith("with grad_output[1] undefined, backward's gradient for x differs")


# -- the result ----------------------------------------------------------------------------------


def test_parts_are_in_the_text_report_and_the_json_with_their_cost():
    result = check(fz.MulJvpTwice, (X, W))
    text = str(result)
    assert "  ok   [second_order]" in text and "  FAIL [forward_mode]" in text and "jvp 5" in text
    data = json.loads(json.dumps(result.to_dict()))
    assert data["checks"]["forward_mode"]["status"] == "failed"
    assert data["checks"]["second_order"]["result"]["passed"] is True
    assert data["calls"]["jvp"] == data["checks"]["forward_mode"]["calls"]["jvp"] == 5


def test_parts_are_skipped_when_the_first_order_gradient_fails():
    result = check(fz.DoubleInPlaceWrong, (V,))
    assert result.checks["second_order"].status == "skipped"
    assert result.cause.startswith("x: gradient off by a constant factor")
