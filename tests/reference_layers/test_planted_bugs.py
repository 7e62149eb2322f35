"""gk.check catches the mistakes the seeds invite, planted in otherwise correct backwards."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradcheck_kit as gk
import reference_layers as rl
from reference_layers import norm


def gaussian_dx_convolved(dy, x, mu, sigma, **params):
    # dX as a convolution of dy with g (right only for a symmetric kernel, mu = 0); the right
    # correlation is the convolution with g(-m), the same filter with mean -mu
    _, dmu, dsigma = rl.gaussian_filter1d_backward(dy, x, mu, sigma, **params)
    return rl.gaussian_filter1d(dy, mu, sigma, **params), dmu, dsigma


def gaussian_dsigma_from_dmu(dy, x, mu, sigma, **params):
    # the seed's eqs. 71-72 typo taken literally: d/dmu where d/dsigma is meant
    dx, dmu, _ = rl.gaussian_filter1d_backward(dy, x, mu, sigma, **params)
    return dx, dmu, dmu


def gaussian_dsigma_without_normalizer(dy, x, mu, sigma, **params):
    # scaled kernel differentiated as if 1/(sigma sqrt(2 pi)) were constant: the -1/sigma term lost
    dx, dmu, _ = rl.gaussian_filter1d_backward(dy, x, mu, sigma, **{**params, "scaled": False})
    dsigma = rl.gaussian_filter1d_backward(dy, x, mu, sigma, **{**params, "scaled": False})[2]
    return (
        dx / (sigma * math.sqrt(2 * math.pi)),
        dmu / (sigma * math.sqrt(2 * math.pi)),
        dsigma / (sigma * math.sqrt(2 * math.pi)),
    )


def conv2d_dw_rotated(dy, x, w, b, **params):
    dx, dw, db = rl.conv2d_backward(dy, x, w, b, **params)
    return dx, np.ascontiguousarray(dw[..., ::-1, ::-1]), db


def avgpool_divisor_counting_padding(dy, x, **params):
    return rl.avgpool2d_backward(dy, x, **{**params, "count_include_pad": True})


def softmax_without_batch_mean(dy, logits, labels):
    dlogits, _ = rl.softmax_cross_entropy_backward(dy, logits, labels)
    return dlogits * logits.shape[0], None


def batch_norm_without_variance_term(dy, x, weight, bias, *, eps=1e-5):
    xp = norm.namespace(x)
    axes = (0, *range(2, x.ndim))
    xhat, rstd = norm._normalize(xp, x, axes, eps)
    dxhat = dy * norm._per_channel(xp, weight, x)
    dx = rstd * (dxhat - dxhat.mean(axis=axes, keepdims=True))  # forgot -xhat mean(dxhat xhat)
    return dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


rng = np.random.default_rng(0)
SIGNAL = (rng.normal(size=(2, 7)), np.asarray(0.8), np.asarray(1.3))
CONV = (rng.normal(size=(2, 2, 5, 6)), rng.normal(size=(3, 2, 3, 2)), rng.normal(size=3))
PLANTED = [
    ("gaussian_filter1d", gaussian_dx_convolved, SIGNAL, {"taps": 5}),
    ("gaussian_filter1d", gaussian_dsigma_from_dmu, SIGNAL, {"taps": 5}),
    ("gaussian_filter1d", gaussian_dsigma_without_normalizer, SIGNAL, {"taps": 5}),
    ("conv2d", conv2d_dw_rotated, CONV, {"stride": 2, "padding": 1}),
    (
        "avgpool2d",
        avgpool_divisor_counting_padding,
        (rng.normal(size=(2, 1, 4, 5)),),
        {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
    ),
    ("softmax_cross_entropy", softmax_without_batch_mean, (rng.normal(size=(3, 4)), np.array([0, 3, 1])), {}),
    (
        "batch_norm",
        batch_norm_without_variance_term,
        (rng.normal(size=(4, 2, 3)), rng.normal(size=2), rng.normal(size=2)),
        {},
    ),
]


@pytest.mark.parametrize(
    ("name", "backward", "inputs", "params"), PLANTED, ids=[p[1].__name__ for p in PLANTED]
)
def test_gk_check_fails_a_planted_bug_that_the_correct_layer_passes(name, backward, inputs, params):
    forward = gk.registry.get(name).forward
    assert gk.check(forward, gk.registry.get(name).backward, inputs, params).passed
    result = gk.check(forward, backward, inputs, params)
    assert not result.passed and any(not report.passed for report in result.inputs), str(result)
