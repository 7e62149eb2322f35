"""Bad arguments to gk.check raise gk.InvalidArgument naming the value and the rule."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk

X = np.ones((2, 2))


def fwd(x):
    return x


def bwd(dy, x):
    return (dy,)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(forward=3), "forward=3 must be callable"),
        (dict(inputs="x"), "inputs='x' must be a tuple of arrays"),
        (dict(inputs=(X, "static")), "inputs[1]='static' is not an array"),
        (dict(inputs=(np.array([1.0, np.nan]),)), "input x contains NaN or Inf"),
        (dict(order=3), "order=3 must be 1 (first order), 2 (second order too) or None"),
        (dict(order=2), "order=2 needs a double backward: pass double_backward="),
        (dict(jvp="tangents"), "jvp='tangents' must be callable (or None)"),
        (dict(wrt=("y",)), "'y' is not an input"),
        (dict(wrt=5), "5 is not an input"),
        (dict(inputs=(np.arange(3),), wrt=0), "only floating inputs are differentiated"),
        (dict(backend="mlx"), "backend='mlx' is unknown; accepted: numpy, cupy, torch"),
        (dict(backend="torch"), "backend='torch' but the inputs are numpy arrays"),
        (dict(mode="fast"), "mode='fast' is unknown; accepted: auto, elementwise, projection"),
        (dict(rtol=-1.0), "rtol=-1.0 must be a finite number >= 0"),
        (dict(atol=float("nan")), "atol=nan must be a finite number >= 0"),
        (dict(seed=-2), "seed=-2 must be a non-negative int"),
    ],
)
def test_invalid_arguments_raise_invalid_argument_naming_the_value(kwargs, words):
    args = dict(forward=fwd, backward=bwd, inputs=(X,))
    args.update(kwargs)
    with pytest.raises(gk.InvalidArgument) as caught:
        gk.check(args.pop("forward"), args.pop("backward"), args.pop("inputs"), **args)
    assert words in str(caught.value)


def masked_softmax(s, mask):
    z = s + mask
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def masked_softmax_backward(dy, s, mask, factor=1.0):
    p = masked_softmax(s, mask)
    return factor * p * (dy - (dy * p).sum(-1, keepdims=True)), None


def test_an_additive_minus_inf_mask_left_out_with_wrt_is_passed_through_and_checked_around():
    s = np.random.default_rng(0).standard_normal((4, 6))
    mask = np.where(np.tril(np.ones((4, 6)), 1) > 0, 0.0, -np.inf)
    assert gk.check(masked_softmax, masked_softmax_backward, (s, mask), wrt=["s"]).passed
    wrong = gk.check(
        masked_softmax, lambda dy, s, m: masked_softmax_backward(dy, s, m, 1.01), (s, mask), wrt=["s"]
    )
    assert not wrong.passed
    with pytest.raises(gk.InvalidArgument, match=r"first -inf at \[0, 2\].*leave it out with wrt="):
        gk.check(masked_softmax, masked_softmax_backward, (s, mask))


def test_mixing_numpy_and_torch_inputs_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(gk.InvalidArgument, match="mix array libraries"):
        gk.check(lambda x, y: x, lambda dy, x, y: (dy, None), (X, torch.ones(2)))


def test_user_tolerances_loosen_the_analytic_allowance():
    def off_by_a_little(dy, x):
        return (dy * np.cos(x) * (1 + 1e-6),)

    x = (np.linspace(0, 1, 5),)
    assert not gk.check(np.sin, off_by_a_little, x).passed
    assert gk.check(np.sin, off_by_a_little, x, rtol=1e-5).passed
