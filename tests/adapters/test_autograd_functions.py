"""from_autograd_function: params reach forward's parameters by name wherever they stand, and
in-place Functions (ctx.mark_dirty) are checked on fresh copies; an undeclared write into an
input is still caught."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import gradcheck_kit as gk  # noqa: E402
from tests.support import functions as fz  # noqa: E402

X = torch.linspace(0.5, 1.5, 5, dtype=torch.float64)
W = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)


def test_a_non_tensor_argument_in_the_middle_of_forward_is_passed_by_name():
    result = gk.check(*gk.from_autograd_function(fz.PowMiddle), (X, W), {"k": 3}, order=1)
    assert result.passed, str(result)
    assert [r.name for r in result.inputs] == ["x", "w"] and result.case == "x float64[5], w [5], k=3"


def test_a_wrong_gradient_beside_a_non_tensor_argument_is_found_on_the_right_input():
    result = gk.check(*gk.from_autograd_function(fz.PowMiddleWrong), (X, W), {"k": 3})
    assert [r.name for r in result.inputs if not r.passed] == ["w"]


def test_a_parameter_left_out_before_a_named_one_takes_its_default():
    class Scaled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale=2.0, shift=None):
            ctx.scale = scale
            return x * scale + shift

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.scale, None, None

    result = gk.check(*gk.from_autograd_function(Scaled), (X,), {"shift": 1.0}, order=1)
    assert result.passed, str(result)


def test_a_param_forward_does_not_take_is_an_exception_naming_forwards_parameters():
    result = gk.check(*gk.from_autograd_function(fz.PowMiddle), (X, W), {"power": 3})
    assert not result.passed
    assert "params ['power'] are not parameters of PowMiddle.forward (x, k, w)" in result.cause


def test_a_mark_dirty_function_is_checked_on_fresh_copies_and_the_callers_tensor_is_left_alone():
    x = X.clone()
    assert gk.check(*gk.from_autograd_function(fz.DoubleInPlace), (x,)).passed
    assert torch.equal(x, X)
    wrong = gk.check(*gk.from_autograd_function(fz.DoubleInPlaceWrong), (x,))
    assert wrong.patterns == ["constant_factor"]


def test_an_in_place_write_forward_does_not_declare_is_a_mutation_finding():
    class Sneaky(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)  # no ctx.mark_dirty: autograd never learns x changed
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    result = gk.check(*gk.from_autograd_function(Sneaky), (X.clone(),))
    assert result.finding("mutation").input == "x"


def test_setup_context_functions_name_their_inputs_without_ctx():
    result = gk.check(*gk.from_autograd_function(fz.Mul), (X, W), order=1)
    assert [r.name for r in result.inputs] == ["x", "w"] and result.passed


def test_anything_but_a_function_class_is_refused_naming_it():
    with pytest.raises(gk.InvalidArgument, match=r"is not a torch\.autograd\.Function subclass"):
        gk.from_autograd_function(fz.Cube.apply)


class _LinearFlags(torch.autograd.Function):
    """y = x w^T + b, each gradient computed only where ctx.needs_input_grad asks for it."""

    flag_for_w = 1

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    @classmethod
    def backward(cls, ctx, grad):
        x, w = ctx.saved_tensors
        dx = grad @ w if ctx.needs_input_grad[0] else None
        dw = grad.T @ x if ctx.needs_input_grad[cls.flag_for_w] else None
        db = grad.sum(0) if ctx.needs_input_grad[2] else None
        return dx, dw, db


class _LinearWrongFlag(_LinearFlags):
    flag_for_w = 2  # the bias's flag guards dW: invisible while every input requires grad


LINEAR = (
    torch.linspace(-1.0, 1.0, 12, dtype=torch.float64).reshape(3, 4),
    torch.linspace(0.5, 2.0, 8, dtype=torch.float64).reshape(2, 4),
    torch.tensor([0.1, -0.2], dtype=torch.float64),
)


def test_inputs_left_out_by_wrt_do_not_require_grad_so_needs_input_grad_is_as_in_real_use():
    right = gk.check(*gk.from_autograd_function(_LinearFlags), LINEAR, wrt=["x", "w"], order=1)
    assert right.passed, str(right)
    wrong = gk.check(*gk.from_autograd_function(_LinearWrongFlag), LINEAR, wrt=["x", "w"], order=1)
    assert not wrong.passed and "gradient for w is None" in str(wrong)
    every = gk.check(*gk.from_autograd_function(_LinearWrongFlag), LINEAR, order=1)
    assert every.passed  # every flag True: the wrong flag is never consulted
