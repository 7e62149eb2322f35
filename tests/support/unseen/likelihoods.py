"""Likelihood losses in their awkward corners: a KL divergence with zero targets (0 log 0 := 0),
a focal loss, label-smoothed cross-entropy, and log-softmax over logits in the thousands."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import FLOAT64, Array, Specimen, inputs, labels, normal, plain

# -- KL divergence with zero targets, the target a parameter -------------------------------------------

_RAW = np.random.default_rng(16).random((4, 6)) * (np.random.default_rng(17).random((4, 6)) > 0.4)
TARGET = _RAW / _RAW.sum(1, keepdims=True)  # a third of the targets exactly 0


def kl_div(logq: Array, target: Array) -> Array:
    safe = np.where(target > 0, target, 1.0)
    return np.asarray(np.where(target > 0, target * (np.log(safe) - logq), 0.0).sum() / logq.shape[0])


def kl_backward(dy: Array, logq: Array, target: Array) -> Array:
    return (-target * (dy / logq.shape[0])).astype(logq.dtype)


def kl_backward_mean_over_elements(dy: Array, logq: Array, target: Array) -> Array:
    """BUG: divides by every element (reduction="mean"), the forward by the batch."""
    return (-target * (dy / logq.size)).astype(logq.dtype)


def log_probabilities(rng: np.random.Generator, dtype: Any) -> tuple[Array]:
    x = rng.normal(size=(4, 6))
    return ((x - np.log(np.exp(x).sum(1, keepdims=True))).astype(dtype),)


def kl_reference(logq: torch.Tensor, target: Array) -> torch.Tensor:
    return torch.nn.functional.kl_div(logq, torch.tensor(target), reduction="batchmean")


# -- focal loss ----------------------------------------------------------------------------------------


def softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def focal_loss(x: Array, y: Array, gamma: float = 2.0) -> Array:
    pt = softmax(x)[np.arange(x.shape[0]), y]
    return np.asarray((-((1 - pt) ** gamma) * np.log(pt)).mean())


def _one_hot_minus_p(x: Array, y: Array) -> tuple[Array, Array]:
    p = softmax(x)
    one_hot = np.zeros_like(p)
    one_hot[np.arange(x.shape[0]), y] = 1
    return one_hot - p, p[np.arange(x.shape[0]), y]


def focal_backward(dy: Array, x: Array, y: Array, gamma: float = 2.0) -> tuple[Array, None]:
    # dL/dlog pt = gamma (1 - pt)^(gamma - 1) pt log pt - (1 - pt)^gamma; dlog pt/dx = onehot - p
    centred, pt = _one_hot_minus_p(x, y)
    coef = gamma * (1 - pt) ** (gamma - 1) * pt * np.log(pt) - (1 - pt) ** gamma
    return coef[:, None] * centred * (dy / x.shape[0]), None


def focal_backward_constant_modulator(
    dy: Array, x: Array, y: Array, gamma: float = 2.0
) -> tuple[Array, None]:
    """BUG: (1 - pt)^gamma treated as a constant weight, its own derivative lost."""
    centred, pt = _one_hot_minus_p(x, y)
    return -((1 - pt) ** gamma)[:, None] * centred * (dy / x.shape[0]), None


def focal_reference(x: torch.Tensor, y: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    log_pt = torch.log_softmax(x, 1)[torch.arange(x.shape[0]), y]
    return (-((1 - log_pt.exp()) ** gamma) * log_pt).mean()


# -- label-smoothed cross-entropy ----------------------------------------------------------------------


def _smoothed(x: Array, y: Array, eps: float) -> Array:
    q = np.full_like(x, eps / x.shape[1])
    q[np.arange(x.shape[0]), y] += 1 - eps
    return q


def smoothed_cross_entropy(x: Array, y: Array, eps: float = 0.1) -> Array:
    shifted = x - x.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return np.asarray(-(_smoothed(x, y, eps) * log_p).sum() / x.shape[0])


def smoothed_ce_backward(dy: Array, x: Array, y: Array, eps: float = 0.1) -> tuple[Array, None]:
    return (softmax(x) - _smoothed(x, y, eps)) * (dy / x.shape[0]), None


def smoothed_ce_backward_one_hot(dy: Array, x: Array, y: Array, eps: float = 0.1) -> tuple[Array, None]:
    """BUG: the backward forgets the smoothing, softmax - onehot."""
    q = np.zeros_like(x)
    q[np.arange(x.shape[0]), y] = 1
    return (softmax(x) - q) * (dy / x.shape[0]), None


def smoothed_ce_backward_eps_over_k_minus_1(
    dy: Array, x: Array, y: Array, eps: float = 0.1
) -> tuple[Array, None]:
    """BUG: another smoothing convention (eps / (K - 1) off the label, 1 - eps on it)."""
    q = np.full_like(x, eps / (x.shape[1] - 1))
    q[np.arange(x.shape[0]), y] = 1 - eps
    return (softmax(x) - q) * (dy / x.shape[0]), None


# -- log-softmax over logits ~1e3 ----------------------------------------------------------------------


def log_softmax(x: Array) -> Array:
    m = x.max(1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(1, keepdims=True))


def log_softmax_backward(dy: Array, x: Array) -> Array:
    return dy - softmax(x) * dy.sum(1, keepdims=True)


def log_softmax_backward_no_sum(dy: Array, x: Array) -> Array:
    """BUG: dy - softmax dy, element by element, instead of against the row's sum."""
    return dy - softmax(x) * dy


def log_softmax_backward_sum_over_batch(dy: Array, x: Array) -> Array:
    """BUG: dy summed over the batch axis."""
    return dy - softmax(x) * dy.sum(0, keepdims=True)


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    found = [
        plain(
            "kl_div_zero_targets",
            kl_div,
            b,
            log_probabilities,
            kl_reference,
            params={"target": TARGET},
            dtypes=FLOAT64,
        )
        for b in (kl_backward, kl_backward_mean_over_elements)
    ]
    found += [
        plain(
            "focal_loss", focal_loss, b, inputs(normal(6, 5, scale=2), labels(6, classes=5)), focal_reference
        )
        for b in (focal_backward, focal_backward_constant_modulator)
    ]
    smoothing = (smoothed_ce_backward, smoothed_ce_backward_one_hot, smoothed_ce_backward_eps_over_k_minus_1)
    found += [
        plain(
            "label_smoothing_ce",
            smoothed_cross_entropy,
            b,
            inputs(normal(5, 10), labels(5, classes=10)),
            lambda x, y, eps=0.1: torch.nn.functional.cross_entropy(x, y, label_smoothing=eps),
        )
        for b in smoothing
    ]
    found += [
        plain(
            "log_softmax_1e3",
            log_softmax,
            b,
            inputs(normal(4, 7, scale=1e3)),
            lambda x: torch.log_softmax(x, 1),
        )
        for b in (log_softmax_backward, log_softmax_backward_no_sum, log_softmax_backward_sum_over_batch)
    ]
    return found
