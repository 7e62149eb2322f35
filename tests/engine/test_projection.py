"""Projection mode at scale: kinks crossed by the step, refinement, confirmation."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk


def relu(x):
    return np.maximum(x, 0)


def relu_backward_times(factor):
    return lambda dy, x: (dy * (x > 0) * factor,)


def crowded_at_the_kink(seed):
    """20000 values whose bulk sits densely around ReLU's kink at 0 (a few large values set the
    step): a projection crosses as many kinks as one over millions of N(0, 1) values does."""
    x = np.random.default_rng(seed).standard_normal(20000) * 0.01
    x[::100] *= 3000
    return x


@pytest.mark.parametrize("seed", range(5))
def test_a_correct_relu_with_kinks_within_a_step_passes_projections(seed):
    x = crowded_at_the_kink(seed)
    result = gk.check(relu, relu_backward_times(1.0), (x,), mode="projection", seed=seed)
    assert result.passed, str(result)
    assert result.calls["forward"] <= 60  # a few refinements, not a localization


@pytest.mark.parametrize("seed", range(5))
def test_a_relu_gradient_one_percent_off_fails_even_where_kinks_blur_the_differences(seed):
    x = crowded_at_the_kink(seed)
    result = gk.check(relu, relu_backward_times(1.01), (x,), mode="projection", seed=seed)
    assert not result.passed and not result.input("x").passed, str(result)


def test_a_smooth_layer_is_not_refined_at_all():
    x = np.random.default_rng(0).standard_normal((400, 300))
    result = gk.check(np.sin, lambda dy, x: (dy * np.cos(x),), (x,), mode="projection")
    assert result.passed and result.calls == {"forward": 5, "backward": 2}


def test_values_a_hair_from_zero_are_left_out_of_projections_and_probed_one_by_one():
    x = np.random.default_rng(0).standard_normal(5000)
    x[[10, 20]] = [1e-13, -1e-14]  # closer to ReLU's kink than any step a projection takes
    result = gk.check(relu, relu_backward_times(1.0), (x,), mode="projection")
    report = result.input("x")
    assert result.passed and report.checked == x.size, str(result)
    assert report.kinks == 2  # probed alone, each seen as the kink it is
    assert result.calls["forward"] <= 20  # no refining down through a kink no step gets past


@pytest.mark.parametrize("shape", [(400, 600), (600, 600)], ids=["sorted", "sampled"])
def test_float32_inputs_full_of_chance_ties_cost_no_extra_calls(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    result = gk.check(np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), (x,), mode="projection")
    assert result.passed, str(result)
    # forward twice and in float64, three differences; backward twice and in float64
    assert result.calls == {"forward": 6, "backward": 3}


@pytest.mark.parametrize("seed", range(6))
def test_a_single_kink_off_zero_in_a_float32_kernel_passes_and_a_wrong_slope_still_fails(seed):
    # relu(x - c) computed in float32 with one element exactly at x == c: not a zero, not a
    # tie, so the projection crosses it; the block holding that kink is found (its own half of
    # the direction passes as a kink, so halves are ranked nonsmooth first when the worst block
    # is right) and the projection is judged again without it
    def forward(x, c=1.0):
        return np.maximum(x.astype(np.float32) - np.float32(c), 0).astype(x.dtype)

    def backward(dy, x, c=1.0):
        return ((dy * (x.astype(np.float32) > np.float32(c))).astype(x.dtype),)

    def backward_scaled(dy, x, c=1.0):  # x 1.05 where the slope is 1 (it passed 4 seeds in 6)
        return ((1.05 * dy * (x.astype(np.float32) > np.float32(c))).astype(x.dtype),)

    x = np.random.default_rng(seed).standard_normal((32, 64))
    x[np.abs(x - 1.0) < 0.01] = 0.3
    x.reshape(-1)[seed * 37] = 1.0
    result = gk.check(forward, backward, (x,), {"c": 1.0})
    assert result.passed, str(result)
    assert result.inputs[0].kinks >= 1
    assert not gk.check(forward, backward_scaled, (x,), {"c": 1.0}).passed


@pytest.mark.parametrize("mode", ["elementwise", "auto"])
def test_where_forward_itself_jumps_nothing_is_judged_and_a_wrong_slope_elsewhere_still_fails(mode):
    # x + 1 for x > 0: a step of 1 at each exact zero, where no derivative exists
    def forward(x):
        return np.where(x > 0, x + 1.0, x)

    x = np.random.default_rng(0).standard_normal((4, 6))
    x.reshape(-1)[[3, 11]] = 0.0
    result = gk.check(forward, lambda dy, x: (dy * np.ones_like(x),), (x,), mode=mode)
    assert result.passed and result.inputs[0].kinks >= 2, str(result)
    wrong = gk.check(forward, lambda dy, x: (dy * np.where(x < -1, 2.0, 1.0),), (x,), mode=mode)
    assert not wrong.passed


def test_a_wrong_slope_is_no_jump_however_large():
    x = np.random.default_rng(0).standard_normal(12) * 1e3
    result = gk.check(np.sin, lambda dy, x: (dy * (np.cos(x) + 1e-3),), (x,), mode="elementwise")
    assert not result.passed and result.inputs[0].kinks == 0
