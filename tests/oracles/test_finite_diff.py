"""Finite-difference building blocks: grid rounding and the two-step judgement."""

from __future__ import annotations

import numpy as np

from gradcheck_kit._oracles.finite_diff import Differences, judge, round_to


def differences(up, down, step, analytic, magnitude=1.0):
    n = len(up)
    w = np.full(n, step)
    g = np.asarray(analytic, dtype=float)
    return Differences(
        np.asarray(up, float),
        np.asarray(down, float),
        w,
        w.copy(),
        g * w,
        -g * w,
        np.abs(g) * 2 * w,
        np.full(n, magnitude),
    )


def test_round_to_float32_lands_on_the_float32_grid():
    value = round_to(1.0 + 1e-9, "float32")
    assert value == 1.0 and round_to(0.1, "float64") == 0.1
    assert np.float32(round_to(0.1, "float32")) == np.float32(0.1)


def test_a_smooth_function_passes_even_when_truncation_dominates():
    # F(x) = x^3 at x = 1: central differences carry h^2 truncation, shrinking 4x per halving
    x, h = 1.0, 1e-2

    def f(v):
        return v**3

    coarse = differences([f(x + h) - f(x)], [f(x) - f(x - h)], h, [3.0])
    fine = differences([f(x + h / 2) - f(x)], [f(x) - f(x - h / 2)], h / 2, [3.0])
    assert judge(coarse, fine, 1e-15, 0.0, 0.0).passed.all()
    wrong_c = differences(coarse.up, coarse.down, h, [3.001])
    wrong_f = differences(fine.up, fine.down, h / 2, [3.001])
    assert not judge(wrong_c, wrong_f, 1e-15, 0.0, 0.0).passed.any()


def test_a_kink_accepts_any_slope_between_the_one_sided_ones():
    # |x| at 0: slopes -1 and +1 on either side
    f = abs
    for analytic, ok in ((0.0, True), (1.0, True), (-1.0, True), (0.5, True), (1.5, False)):
        c = differences([f(1e-2)], [-f(-1e-2)], 1e-2, [analytic])
        fi = differences([f(5e-3)], [-f(-5e-3)], 5e-3, [analytic])
        verdict = judge(c, fi, 1e-15, 0.0, 0.0)
        assert bool(verdict.passed[0]) is ok, analytic
        assert bool(verdict.nonsmooth[0]) is (analytic != 0.0)  # 0 is also the central slope
