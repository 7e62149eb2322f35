"""Kinks shared with a broadcast parameter: relu(x + b) at x + b == 0, clip(x, 0, alpha) at
x == alpha. Each gradient alone may sit between its own one-sided slopes; together, moved so
that the kink's term stays put, they must give the slope."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk


def relu_bias(x, b):
    return np.maximum(x + b, 0)


def relu_bias_backward(x_mask, b_mask):
    def backward(dy, x, b):
        z = x + b
        return dy * x_mask(z), (dy * b_mask(z)).sum(0)

    return backward


def integer_data(seed):
    x = np.random.default_rng(seed).integers(-2, 3, size=(6, 4)).astype(np.float64)
    return x, np.array([0.0, 1.0, -1.0, 0.5])  # x + b == 0 in three columns


def strict(z):
    return z > 0


def loose(z):
    return z >= 0


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("masks", [(strict, strict), (loose, loose)], ids=["z>0", "z>=0"])
def test_a_bias_on_relu_kinks_with_one_convention_for_both_gradients_passes(seed, masks):
    result = gk.check(relu_bias, relu_bias_backward(*masks), integer_data(seed), seed=seed)
    assert result.passed, str(result)


@pytest.mark.parametrize("seed", range(3))
def test_a_bias_whose_mask_counts_the_kink_while_the_inputs_mask_does_not_fails(seed):
    result = gk.check(relu_bias, relu_bias_backward(strict, loose), integer_data(seed), seed=seed)
    assert not result.passed
    assert "kinks disagree" in result.cause


def pact(x, alpha):
    return np.clip(x, 0, alpha[0])


def pact_backward(*, x_at_tie, alpha_share=1.0, averaged=False):
    """dx takes ``x_at_tie`` of grad_output where x == alpha; alpha the rest (``alpha_share``
    of it: 2 counts the tie twice), summed over the elements (or ``averaged``)."""

    def backward(dy, x, alpha):
        a = alpha[0]
        tie = x == a
        dx = dy * ((x > 0) & (x < a)) + x_at_tie * dy * tie
        da = (dy * (x > a)).sum() + alpha_share * ((1 - x_at_tie) * dy * tie).sum()
        return dx, np.array([da / x.size if averaged else da])

    return backward


def pact_data(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 4, size=(6, 5)).astype(np.float64)  # ties at 0 and at alpha == 2
    x[::3] += 0.25 * rng.standard_normal(x[::3].shape)
    return x, np.array([2.0])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("x_at_tie", [0.0, 0.5, 1.0])
def test_a_learned_clip_threshold_with_any_split_of_the_tie_passes(seed, x_at_tie):
    result = gk.check(pact, pact_backward(x_at_tie=x_at_tie), pact_data(seed), seed=seed)
    assert result.passed, str(result)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    "wrong",
    [
        {"x_at_tie": 0.0, "alpha_share": 0.0},
        {"x_at_tie": 0.5, "alpha_share": 3.0},
        {"x_at_tie": 1.0, "averaged": True},
    ],
    ids=["tie-given-to-neither", "tie-counted-twice", "alpha-averaged"],
)
def test_a_learned_clip_threshold_that_does_not_add_up_with_its_inputs_fails(seed, wrong):
    result = gk.check(pact, pact_backward(**wrong), pact_data(seed), seed=seed)
    assert not result.passed
