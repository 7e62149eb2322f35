"""Ties are judged jointly: a max-pool backward giving the full gradient to every tied maximum
fails, while first-argmax, last-argmax and split-equally conventions pass, whatever the window
overlap, reduction or mode."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk


def windows(x, kernel, stride):
    """(N, C, OH, OW, kernel*kernel) views of the pooling windows."""
    h, w = x.shape[2:]
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    taps = [
        x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
        for i in range(kernel)
        for j in range(kernel)
    ]
    return np.stack(taps, axis=-1)


def max_pool(x, kernel=2, stride=2):
    return windows(x, kernel, stride).max(axis=-1)


def max_pool_backward(convention):
    def backward(dy, x, kernel=2, stride=2):
        win = windows(x, kernel, stride)
        tied = win == win.max(axis=-1, keepdims=True)
        if convention == "mask":  # CS231n's idiom: the full dy to every tied maximum
            share = tied.astype(float)
        elif convention == "split":
            share = tied / tied.sum(axis=-1, keepdims=True)
        elif convention == "unique-only":  # drops the gradient of windows with tied maxima
            share = tied * (tied.sum(axis=-1, keepdims=True) == 1)
        else:
            pick = np.argmax(win if convention == "first" else win[..., ::-1], axis=-1)
            if convention == "last":
                pick = win.shape[-1] - 1 - pick
            share = np.eye(win.shape[-1])[pick]
        dx = np.zeros_like(x)
        oh, ow = dy.shape[2:]
        for t in range(kernel * kernel):
            i, j = divmod(t, kernel)
            dx[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += share[..., t] * dy
        return (dx,)

    return backward


def quantized(seed, shape=(2, 2, 6, 6)):
    """Integer-valued data: ties in most windows, as in quantized images or after ReLU."""
    return np.random.default_rng(seed).integers(-2, 3, size=shape).astype(np.float64)


GEOMETRIES = [{"kernel": 2, "stride": 2}, {"kernel": 3, "stride": 1}, {"kernel": 3, "stride": 2}]


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
@pytest.mark.parametrize("params", GEOMETRIES, ids=lambda p: f"k{p['kernel']}s{p['stride']}")
@pytest.mark.parametrize("convention", ["first", "last", "split"])
def test_every_valid_tie_convention_passes(convention, params, mode):
    for seed in range(3):
        result = gk.check(max_pool, max_pool_backward(convention), (quantized(seed),), params, mode=mode)
        assert result.passed, str(result)


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
@pytest.mark.parametrize("params", GEOMETRIES, ids=lambda p: f"k{p['kernel']}s{p['stride']}")
def test_the_full_gradient_to_every_tied_maximum_fails_and_is_named(params, mode):
    for seed in range(3):
        result = gk.check(max_pool, max_pool_backward("mask"), (quantized(seed),), params, mode=mode)
        assert not result.passed
        assert result.patterns == ["tie_gradient_duplicated"], str(result)
        assert "window == window.max()" in result.cause


def test_a_backward_dropping_the_gradient_of_tied_windows_fails_and_is_named():
    result = gk.check(max_pool, max_pool_backward("unique-only"), (quantized(0),))
    assert result.patterns == ["tie_gradient_dropped"], str(result)


def test_the_mask_idiom_passes_where_the_data_has_no_ties():
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    assert gk.check(max_pool, max_pool_backward("mask"), (x,)).passed


def test_ties_of_a_max_reduction_are_judged_jointly_too():
    def row_max(x):
        return x.max(axis=1)

    def first(dy, x):
        dx = np.zeros_like(x)
        dx[np.arange(x.shape[0]), x.argmax(axis=1)] = dy
        return (dx,)

    def every(dy, x):
        return ((x == x.max(axis=1, keepdims=True)) * dy[:, None],)

    x = quantized(1, (6, 5))
    assert gk.check(row_max, first, (x,)).passed
    assert not gk.check(row_max, every, (x,)).passed


def test_a_stable_sort_with_ties_passes():
    def sort(x):
        return np.sort(x, axis=-1)

    def backward(dy, x):
        order = np.argsort(x, axis=-1, kind="stable")
        dx = np.zeros_like(x)
        np.put_along_axis(dx, order, dy, axis=-1)
        return (dx,)

    rng = np.random.default_rng(2)  # pairs of equal values in every row
    x = np.stack([rng.permutation([0.0, 0.0, 1.0, 1.0, -2.0, -2.0, 3.0]) for _ in range(4)])
    assert gk.check(sort, backward, (x,)).passed


def clamp(x):
    return np.clip(x, -1.0, 1.0)


def assert_both_clamp_conventions_pass_and_a_doubled_gradient_fails(x, mode):
    for inside in (lambda x: (x > -1) & (x < 1), lambda x: (x >= -1) & (x <= 1)):
        backward = lambda dy, x, inside=inside: (dy * inside(x),)  # noqa: E731
        result = gk.check(clamp, backward, (x,), mode=mode)
        assert result.passed, str(result)

    def doubled(dy, x):  # 2 dy at the bounds: outside [0, dy] whichever side
        return (dy * np.where(np.abs(x) == 1, 2.0, np.abs(x) < 1),)

    assert not gk.check(clamp, doubled, (x,), mode=mode).passed


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
def test_a_clamp_at_both_bounds_passes_either_convention_and_fails_a_doubled_gradient(mode):
    # equal values at +1 (a concave kink) and at -1 (a convex one): moved together, the kinks'
    # one-sided slopes cancel, so only the sum of each group's own interval bounds the gradient
    x = np.random.default_rng(0).normal(scale=1.5, size=(4, 6))
    x.reshape(-1)[::3] = np.tile([1.0, -1.0], 4)
    assert_both_clamp_conventions_pass_and_a_doubled_gradient_fails(x, mode)


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
def test_a_clamp_at_both_bounds_among_many_tie_groups_passes_and_a_doubled_gradient_fails(mode):
    # quantized data (a float16/bfloat16 tensor's): over 16 groups of equal values, so the
    # largest are judged one by one and the rest along one direction of their own
    x = np.round(np.random.default_rng(1).normal(scale=1.2, size=(8, 12)) * 8) / 8
    x[0, :6], x[1, :6] = 1.0, -1.0
    assert len(np.unique(x)) > 20
    assert_both_clamp_conventions_pass_and_a_doubled_gradient_fails(x, mode)


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
def test_relu_and_abs_at_many_tied_zeros_pass_whatever_the_convention(mode):
    x = quantized(3, (5, 8))
    x[:, ::2] = 0.0
    for derivative in (lambda x: x > 0, lambda x: x >= 0, lambda x: 0.5 * (x >= 0) + 0.5 * (x > 0)):
        backward = lambda dy, x, d=derivative: (dy * d(x),)  # noqa: E731
        result = gk.check(lambda x: np.maximum(x, 0), backward, (x,), mode=mode)
        assert result.passed, str(result)
    assert gk.check(np.abs, lambda dy, x: (dy * np.sign(x),), (x,), mode=mode).passed
