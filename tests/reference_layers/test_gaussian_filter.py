"""gaussian_filter1d: torch at 1e-10, gk.check, and the seed's equations 65-81 written out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference_layers import gaussian_filter1d, gaussian_filter1d_backward

from .support import gk_check_property, requires_torch, torch_property

HALF = 2  # taps m = -2..2
TAPS = np.arange(-HALF, HALF + 1)


def kernel(mu: float, sigma: float, scaled: bool = True) -> np.ndarray:
    g = np.exp(-0.5 * ((TAPS - mu) / sigma) ** 2)  # eq. 54
    return g / (sigma * math.sqrt(2 * math.pi)) if scaled else g  # eq. 44


def signal(n: int = 9, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=n)


def at(x: np.ndarray, i: int) -> float:
    return float(x[i]) if 0 <= i < len(x) else 0.0  # X = 0 outside the signal


@requires_torch
def test_gaussian_filter1d_matches_torch_for_asymmetric_kernels_batches_and_several_kernels():
    torch_property("gaussian_filter1d")()


@requires_torch
def test_the_unscaled_gaussian_filter1d_matches_torch():
    torch_property("gaussian_filter1d_unscaled")()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["gaussian_filter1d", "gaussian_filter1d_unscaled"])
def test_gaussian_filters_pass_gk_check_on_numpy(name, dtype):
    gk_check_property(name, dtype)


@pytest.mark.parametrize("scaled", [True, False])
def test_the_output_is_the_seeds_sum_over_taps_with_zero_outside_the_signal(scaled):
    x, mu, sigma = signal(), 0.7, 1.3
    g = kernel(mu, sigma, scaled)
    y = gaussian_filter1d(x, np.asarray(mu), np.asarray(sigma), taps=5, scaled=scaled)
    expected = [sum(at(x, n - m) * g[m + HALF] for m in TAPS) for n in range(len(x))]  # eq. 65
    np.testing.assert_allclose(y, expected, rtol=1e-13)


def test_dx_is_the_correlation_of_dy_with_an_asymmetric_kernel_not_its_convolution():
    x, mu, sigma = signal(), 0.9, 1.1  # mu != 0: g(m) != g(-m)
    g = kernel(mu, sigma)
    dy = signal(seed=1)
    dx, _, _ = gaussian_filter1d_backward(dy, x, np.asarray(mu), np.asarray(sigma), taps=5)
    lookup = dict(zip(TAPS.tolist(), g))
    correlation = [
        sum(dy[k] * lookup.get(k - i, 0.0) for k in range(len(x))) for i in range(len(x))
    ]  # eq. 80
    convolution = [sum(dy[k] * lookup.get(i - k, 0.0) for k in range(len(x))) for i in range(len(x))]
    np.testing.assert_allclose(dx, correlation, rtol=1e-13)
    assert not np.allclose(dx, convolution)


@pytest.mark.parametrize("scaled", [True, False])
def test_dmu_and_dsigma_follow_the_seeds_equations_66_to_73(scaled):
    x, mu, sigma = signal(), -0.6, 1.4
    dy = signal(seed=2)
    _, dmu, dsigma = gaussian_filter1d_backward(
        dy, x, np.asarray(mu), np.asarray(sigma), taps=5, scaled=scaled
    )
    e = np.exp(-0.5 * ((TAPS - mu) / sigma) ** 2)
    if scaled:  # eqs. 51 and 48
        dg_dmu = (TAPS - mu) / (sigma**3 * math.sqrt(2 * math.pi)) * e
        dg_dsigma = e / math.sqrt(2 * math.pi) * ((TAPS - mu) ** 2 / sigma**4 - 1 / sigma**2)
    else:  # eqs. 62 and 59
        dg_dmu = (TAPS - mu) / sigma**2 * e
        dg_dsigma = (TAPS - mu) ** 2 / sigma**3 * e

    def chain(dg: np.ndarray) -> float:  # eq. 66 with eqs. 70 / 73: sum_n dO(n) sum_m X(n - m) dg(m)
        return sum(dy[n] * sum(at(x, n - m) * dg[m + HALF] for m in TAPS) for n in range(len(x)))

    assert dmu.shape == () and dsigma.shape == ()
    assert float(dmu) == pytest.approx(chain(dg_dmu), rel=1e-12)
    assert float(dsigma) == pytest.approx(chain(dg_dsigma), rel=1e-12)


def test_several_kernels_at_once_sum_their_input_gradients():
    x = np.random.default_rng(3).normal(size=(2, 7))
    mu, sigma = np.array([0.0, 1.2, -0.8]), np.array([0.6, 1.0, 2.5])
    y = gaussian_filter1d(x, mu, sigma, taps=5)
    assert y.shape == (2, 3, 7)
    dy = np.random.default_rng(4).normal(size=y.shape)
    dx, dmu, dsigma = gaussian_filter1d_backward(dy, x, mu, sigma, taps=5)
    singles = [
        gaussian_filter1d_backward(dy[:, k], x, mu[k : k + 1][0], sigma[k : k + 1][0], taps=5)
        for k in range(3)
    ]
    np.testing.assert_allclose(dx, sum(s[0] for s in singles), rtol=1e-13)
    np.testing.assert_allclose(dmu, [s[1] for s in singles], rtol=1e-13)
    np.testing.assert_allclose(dsigma, [s[2] for s in singles], rtol=1e-13)


@pytest.mark.parametrize(("padding", "length"), [("same", 9), ("valid", 5), ("full", 13)])
def test_padding_modes_give_the_documented_output_lengths(padding, length):
    y = gaussian_filter1d(signal(), np.asarray(0.3), np.asarray(1.0), taps=5, padding=padding)
    assert y.shape == (length,)


def test_float32_inputs_stay_float32_and_gradients_match_the_input_shapes():
    x = signal().astype(np.float32)
    mu, sigma = np.asarray(0.5, dtype=np.float32), np.asarray(1.5, dtype=np.float32)
    y = gaussian_filter1d(x, mu, sigma, taps=3)
    grads = gaussian_filter1d_backward(np.ones_like(y), x, mu, sigma, taps=3)
    assert y.dtype == np.float32 and [g.dtype for g in grads] == [np.float32] * 3
    assert [g.shape for g in grads] == [x.shape, (), ()]


def test_dx_equals_the_same_layer_applied_to_dy_with_the_mean_negated():
    # correlating with g(m) is convolving with g(-m), a Gaussian of mean -mu
    x, mu, sigma, dy = signal(), np.asarray(0.9), np.asarray(1.1), signal(seed=5)
    dx, _, _ = gaussian_filter1d_backward(dy, x, mu, sigma, taps=5)
    np.testing.assert_allclose(dx, gaussian_filter1d(dy, -mu, sigma, taps=5), rtol=1e-13)
