"""Directions and steps the gradient check perturbs along."""

from __future__ import annotations

import numpy as np

from gradcheck_kit._engine.directions import signed_magnitudes, special_elements
from gradcheck_kit._engine.tolerances import element_steps, input_scale


def test_signed_magnitudes_are_never_tiny_and_take_both_signs_evenly():
    u = signed_magnitudes(np.random.default_rng(0), (400, 500))
    assert u.shape == (400, 500) and u.dtype == np.float64
    assert np.all(np.abs(u) >= 0.5) and np.all(np.abs(u) < 1.5)
    assert abs(np.mean(u > 0) - 0.5) < 0.01  # 200k draws: the sign is a fair coin
    assert abs(np.mean(np.abs(u)) - 1.0) < 0.01  # magnitudes uniform on [0.5, 1.5)


def test_signed_magnitudes_follow_the_seed():
    first = signed_magnitudes(np.random.default_rng(7), 1000)
    assert np.array_equal(first, signed_magnitudes(np.random.default_rng(7), 1000))
    assert not np.array_equal(first, signed_magnitudes(np.random.default_rng(8), 1000))


def test_element_steps_scale_with_each_value_but_never_fall_below_the_inputs_scale():
    values = np.array([0.0, 1e-9, -3.0, 100.0])
    before = values.copy()
    steps = element_steps(values, 1e-5)
    assert np.array_equal(values, before)  # computed in place on its own buffer, not the input's
    floor = 1e-5 * input_scale(values)
    assert np.allclose(steps, [floor, floor, max(3e-5, floor), 1e-3])


def test_special_elements_are_zeros_near_zeros_and_ties():
    values = np.array([0.0, 1e-12, -1e-12, 0.5, 0.5, 2.0, -3.0])
    assert special_elements(values, exhaustive=True).tolist() == [0, 3, 4]
    assert special_elements(values, exhaustive=True, near_zero=1e-11).tolist() == [0, 1, 2, 3, 4]


def test_chance_ties_are_not_special_in_a_first_look_but_quantized_data_is():
    rng = np.random.default_rng(0)
    float32_data = rng.standard_normal(300_000).astype(np.float32).astype(np.float64)
    assert special_elements(float32_data, exhaustive=False).size == 0  # coincidences only
    assert special_elements(float32_data, exhaustive=True).size > 0
    quantized = rng.integers(-3, 4, 300_000).astype(np.float64)
    assert special_elements(quantized, exhaustive=False).size == quantized.size  # zeros and ties
