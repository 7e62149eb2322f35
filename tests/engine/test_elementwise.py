"""Element-wise probes where an element is far smaller than its input's scale (which sets its
step, so that zeros get one): differenced again at a step of its own size."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk

EPS = 1e-10


def rms_norm(x, g):
    return x / np.sqrt((x * x).mean(1, keepdims=True) + EPS) * g


def rms_norm_backward(dy, x, g, *, mean_term=True):
    r = np.sqrt((x * x).mean(1, keepdims=True) + EPS)
    dx = g * dy / r
    if mean_term:
        dx = dx - x * (g * dy * x).sum(1, keepdims=True) / (x.shape[1] * r**3)
    return dx, (dy * x / r).sum(0)


def mixed_rows():
    rng = np.random.default_rng(37)
    x = rng.normal(size=(4, 16))
    x[0] *= 1e-6  # a row a million times smaller than the input's RMS, another 1e4 larger
    x[1] *= 1e4
    return x, rng.normal(size=16)


def test_a_row_far_below_the_inputs_scale_is_differenced_at_its_own_scale():
    x, g = mixed_rows()
    result = gk.check(rms_norm, rms_norm_backward, (x, g))
    assert result.passed, str(result)
    wrong = gk.check(rms_norm, lambda dy, x, g: rms_norm_backward(dy, x, g, mean_term=False), (x, g))
    assert not wrong.passed


@pytest.mark.parametrize("seed", [1, 40])  # 1: a zero count, whose 0 * log(negative) is NaN
def test_a_step_out_of_logs_domain_is_retried_at_the_elements_own_scale(seed):
    rng = np.random.default_rng(seed)
    r = 10.0 ** rng.uniform(-6, 4, size=(4, 5))  # rates from 1e-6 to 1e4
    t = rng.integers(0, 4, size=(4, 5))

    def poisson_nll(r, t):
        return np.asarray((r - t * np.log(r)).mean())

    result = gk.check(poisson_nll, lambda dy, r, t: ((1 - t / r) * (dy / r.size), None), (r, t))
    assert result.passed, str(result)
    wrong = gk.check(poisson_nll, lambda dy, r, t: ((1 - t / r**2) * (dy / r.size), None), (r, t))
    assert not wrong.passed
