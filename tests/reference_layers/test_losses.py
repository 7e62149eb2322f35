"""softmax_cross_entropy: torch at 1e-10, gk.check, stability at ±1e4, the seed's gradient."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradcheck_kit as gk
from reference_layers import softmax_cross_entropy, softmax_cross_entropy_backward

from .support import assert_matches_torch, check_passes, gk_check_property, requires_torch, torch_property


def extreme_logits(dtype: str = "float64") -> gk.Case:
    rng = np.random.default_rng(0)
    logits = rng.choice([-1e4, 1e4], size=(4, 5)) * rng.uniform(0.5, 1.0, size=(4, 5))
    return gk.Case((logits.astype(dtype), np.array([0, 3, 1, 4])))


@requires_torch
def test_softmax_cross_entropy_matches_torch_for_every_batch_and_class_count():
    torch_property("softmax_cross_entropy")()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softmax_cross_entropy_passes_gk_check_on_numpy(dtype):
    gk_check_property("softmax_cross_entropy", dtype)


def test_softmax_cross_entropy_is_finite_and_warning_free_for_logits_of_plus_minus_1e4():
    logits, labels = extreme_logits().inputs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = softmax_cross_entropy(logits, labels)
        dlogits, dlabels = softmax_cross_entropy_backward(np.asarray(1.0), logits, labels)
    assert loss.shape == () and np.isfinite(loss) and loss > 1e3
    assert np.isfinite(dlogits).all() and dlabels is None
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-15)


@requires_torch
def test_softmax_cross_entropy_matches_torch_for_logits_of_plus_minus_1e4():
    assert_matches_torch("softmax_cross_entropy", extreme_logits())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softmax_cross_entropy_passes_gk_check_for_logits_of_plus_minus_1e4(dtype):
    check_passes("softmax_cross_entropy", extreme_logits(dtype))


def test_the_gradient_is_p_minus_one_at_the_label_and_p_elsewhere_averaged_over_the_batch():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    labels = np.array([1, 0])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    dlogits, _ = softmax_cross_entropy_backward(np.asarray(1.0), logits, labels)
    np.testing.assert_allclose(dlogits, (p - np.eye(3)[labels]) / 2, rtol=1e-14)
    loss = softmax_cross_entropy(logits, labels)
    assert float(loss) == pytest.approx(-np.log(p[[0, 1], labels]).mean(), rel=1e-14)
