"""Kinks shared by several elements (|p - t| at p == t, max(a, b) at a == b, a hinge loss's zero
margins): each element passes alone on its kink, so only the kinks shifted together, where the
layer is smooth, tell a consistent subgradient from per-element conventions that disagree."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk


def l1_inputs(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 6, size=(4, 6)).astype(np.float64)
    return t + 0.5 * rng.integers(-1, 2, size=(4, 6)), t  # p == t at about a third


def l1(p, t):
    return np.asarray(np.abs(p - t).mean())


@pytest.mark.parametrize("seed", range(2))
def test_l1_at_ties_passes_with_one_convention_and_fails_with_two_that_disagree(seed):
    p, t = l1_inputs(seed)

    def sign_both(dy, p, t):
        s = np.sign(p - t) * dy / p.size
        return s, -s

    def ge_both(dy, p, t):
        s = np.where(p - t >= 0, 1.0, -1.0) * dy / p.size
        return s, -s

    def mixed(dy, p, t):  # dp + dt = 1/n at a tie: not a subgradient of a function of p - t
        return np.where(p - t >= 0, 1.0, -1.0) * dy / p.size, -np.sign(p - t) * dy / p.size

    for backward in (sign_both, ge_both):
        assert gk.check(l1, backward, (p, t), seed=seed).passed
    result = gk.check(l1, mixed, (p, t), seed=seed)
    assert not result.passed and "kinks_inconsistent" in result.patterns, str(result)
    assert "of p, t" in result.cause


def test_elementwise_max_of_two_inputs_at_ties_fails_when_both_get_the_full_gradient():
    rng = np.random.default_rng(3)
    a = rng.integers(-2, 3, size=(3, 5)).astype(np.float64)
    b = np.where(rng.random((3, 5)) < 0.4, a, rng.integers(-2, 3, size=(3, 5)))
    first = lambda dy, a, b: (dy * (a >= b), dy * (b > a))  # noqa: E731
    split = lambda dy, a, b: (dy * ((a > b) + 0.5 * (a == b)), dy * ((b > a) + 0.5 * (a == b)))  # noqa: E731
    both = lambda dy, a, b: (dy * (a >= b), dy * (b >= a))  # noqa: E731
    for backward in (first, split):
        assert gk.check(np.maximum, backward, (a, b)).passed
    assert not gk.check(np.maximum, both, (a, b)).passed


def svm_loss(x, y):
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    return np.asarray(margins.sum() / n)


def svm_backward(strict_for_correct_class):
    def backward(dy, x, y):
        n = x.shape[0]
        margins = x - x[np.arange(n), y][:, None] + 1.0
        binary = (margins >= 0).astype(x.dtype)
        binary[np.arange(n), y] = 0
        counted = margins > 0 if strict_for_correct_class else margins >= 0
        counted[np.arange(n), y] = False
        binary[np.arange(n), y] = -counted.sum(axis=1)
        return binary * (dy / n), None

    return backward


def test_a_hinge_loss_at_zero_margins_needs_one_convention_for_both_sides_of_each_margin():
    rng = np.random.default_rng(10)
    x = rng.integers(-2, 3, size=(6, 5)).astype(np.float64)  # integer scores: zero margins
    y = rng.integers(0, 5, size=6)
    assert gk.check(svm_loss, svm_backward(False), (x, y)).passed
    result = gk.check(svm_loss, svm_backward(True), (x, y))
    assert not result.passed and "kinks_inconsistent" in result.patterns, str(result)
