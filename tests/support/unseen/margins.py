"""Margin and distance losses at their kinks: a multiclass SVM and a triplet loss over integer
scores (margins exactly zero), L1 with predictions equal to their targets, smooth L1 with
|p - t| exactly at its threshold, and a contrastive loss. Where inputs share a kink the ground
truth is a subgradient test over all of them: a gradient valid for each input alone can still
be outside the joint subdifferential (|p - t| at p == t: (+1, 0) is not c (1, -1))."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import Array, Specimen, cache, inputs, integers, labels, normal, plain
from .subgradients import difference_subgradient, multiclass_hinge_subgradient

Cache = tuple[Any, ...]

# -- multiclass SVM (CS231n) over integer scores -------------------------------------------------------


def svm_loss_forward(x: Array, y: Array) -> tuple[Array, Cache]:
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    return np.asarray(margins.sum() / n), (x, y, margins)


def svm_loss_backward(dout: Array, cache: Cache) -> tuple[Array, None]:
    x, y, margins = cache
    n = x.shape[0]
    binary = (margins > 0).astype(x.dtype)
    binary[np.arange(n), y] = -binary.sum(axis=1)
    return binary * (dout / n), None


def svm_loss_backward_kink_counted_once(dout: Array, cache: Cache) -> tuple[Array, None]:
    """BUG: a zero margin counts for its wrong class (>= 0) but not for the true class's sum
    (> 0): each weight is a valid subgradient alone, the row no longer sums to zero."""
    x, y, margins = cache
    n = x.shape[0]
    binary = (x - x[np.arange(n), y][:, None] + 1.0 >= 0).astype(x.dtype)
    binary[np.arange(n), y] = -(margins > 0).sum(axis=1)
    return binary * (dout / n), None


def svm_loss_backward_no_mean(dout: Array, cache: Cache) -> tuple[Array, None]:
    """BUG: the forward averages over the batch, the backward does not."""
    x, y, margins = cache
    binary = (margins > 0).astype(x.dtype)
    binary[np.arange(x.shape[0]), y] = -binary.sum(axis=1)
    return binary * dout, None


def svm_reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    margins = torch.relu(x - x[torch.arange(n), y][:, None] + 1.0)
    return (margins * (1 - torch.nn.functional.one_hot(y, x.shape[1]))).sum() / n


# -- L1 loss with p == t -------------------------------------------------------------------------------


def l1_forward(p: Array, t: Array) -> tuple[Array, Cache]:
    d = p - t
    return np.asarray(np.abs(d).mean()), (d,)


def l1_backward(dout: Array, cache: Cache) -> tuple[Array, Array]:
    (d,) = cache
    s = np.sign(d) * (dout / d.size)
    return s, -s


def l1_backward_two_conventions(dout: Array, cache: Cache) -> tuple[Array, Array]:
    """BUG: p takes slope +1 at p == t, t takes sign(0) = 0: each in [-1, 1], together not the
    gradient of anything (moving p and t together leaves the loss flat)."""
    (d,) = cache
    dp = np.where(d >= 0, 1.0, -1.0) * (dout / d.size)
    return dp.astype(d.dtype), -np.sign(d) * (dout / d.size)


def l1_backward_target_sign(dout: Array, cache: Cache) -> tuple[Array, Array]:
    """BUG: the target's gradient keeps the prediction's sign."""
    (d,) = cache
    s = np.sign(d) * (dout / d.size)
    return s, s


def at_the_targets(rng: np.random.Generator, dtype: Any) -> tuple[Array, Array]:
    """Integer targets, predictions half a step either side or exactly on them."""
    t = rng.integers(0, 6, size=(4, 6)).astype(dtype)
    return t + 0.5 * rng.integers(-1, 2, size=(4, 6)).astype(dtype), t


def sign_slopes(d: Array) -> tuple[Array, Array]:
    return np.where(d == 0, -1.0, np.sign(d)), np.where(d == 0, 1.0, np.sign(d))


# -- smooth L1 with |p - t| exactly at beta ------------------------------------------------------------


def smooth_l1(p: Array, t: Array, beta: float = 1.0) -> Array:
    d = p - t
    return np.asarray(np.where(np.abs(d) < beta, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta).mean())


def smooth_l1_backward(dy: Array, p: Array, t: Array, beta: float = 1.0) -> tuple[Array, Array]:
    # continuously differentiable at |d| == beta: both branches give slope +-1 there
    d = p - t
    g = np.where(np.abs(d) < beta, d / beta, np.sign(d)) * (dy / d.size)
    return g, -g


def smooth_l1_backward_quadratic_doubled(
    dy: Array, p: Array, t: Array, beta: float = 1.0
) -> tuple[Array, Array]:
    """BUG: 2 d / beta on the quadratic branch, the derivative of d^2 without the 1/2."""
    d = p - t
    g = np.where(np.abs(d) < beta, 2 * d / beta, np.sign(d)) * (dy / d.size)
    return g, -g


def smooth_l1_backward_linear_branch_d(
    dy: Array, p: Array, t: Array, beta: float = 1.0
) -> tuple[Array, Array]:
    """BUG: d instead of sign(d) on the linear branch (right at the threshold, wrong beyond)."""
    d = p - t
    g = np.where(np.abs(d) < beta, d / beta, d) * (dy / d.size)
    return g, -g


def at_the_threshold(rng: np.random.Generator, dtype: Any) -> tuple[Array, Array]:
    t = rng.normal(size=(5, 6)).round(2)
    offsets = rng.choice([-2, -1, -0.5, 0, 0.5, 1, 2, 1.5], size=(5, 6))
    return (t + offsets).astype(dtype), t.astype(dtype)


# -- triplet margin loss over integer embeddings (hinges exactly 0) ------------------------------------


def triplet_forward(a: Array, p: Array, n: Array, margin: float = 1.0) -> tuple[Array, Cache]:
    loss = np.maximum(0, ((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + margin)
    return np.asarray(loss.mean()), (a, p, n, loss)


def _active(dout: Array, a: Array, loss: Array) -> Array:
    # the mask loss > 0 gives weight 0 on a zero hinge: a valid subgradient, and autograd's
    return ((loss > 0).astype(a.dtype) * dout / a.shape[0])[:, None]


def triplet_backward(dout: Array, cache: Cache) -> tuple[Array, Array, Array]:
    a, p, n, loss = cache
    m = _active(dout, a, loss)
    return 2 * (n - p) * m, -2 * (a - p) * m, 2 * (a - n) * m


def triplet_backward_negative_sign(dout: Array, cache: Cache) -> tuple[Array, Array, Array]:
    """BUG: the negative's gradient has the sign of the positive's."""
    a, p, n, loss = cache
    m = _active(dout, a, loss)
    return 2 * (n - p) * m, -2 * (a - p) * m, -2 * (a - n) * m


def triplet_backward_anchor_without_negative(dout: Array, cache: Cache) -> tuple[Array, Array, Array]:
    """BUG: the anchor's gradient is only the positive distance's, 2 (a - p)."""
    a, p, n, loss = cache
    m = _active(dout, a, loss)
    return 2 * (a - p) * m, -2 * (a - p) * m, 2 * (a - n) * m


def triplet_reference(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    return torch.relu(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + margin).mean()


# -- contrastive loss ----------------------------------------------------------------------------------


def contrastive(x1: Array, x2: Array, y: Array, margin: float = 2.0) -> Array:
    d = np.sqrt(((x1 - x2) ** 2).sum(1))
    return np.asarray((y * d**2 + (1 - y) * np.maximum(0, margin - d) ** 2).mean() / 2)


def contrastive_backward(
    dy: Array, x1: Array, x2: Array, y: Array, margin: float = 2.0
) -> tuple[Array, Array, None]:
    # d/dx1 of (margin - d)^2 / 2 is -(margin - d) (x1 - x2) / d
    diff = x1 - x2
    d = np.sqrt((diff**2).sum(1))
    g = (y - (1 - y) * np.maximum(0, margin - d) / d)[:, None] * diff * (dy / x1.shape[0])
    return g, -g, None


def contrastive_backward_no_over_d(
    dy: Array, x1: Array, x2: Array, y: Array, margin: float = 2.0
) -> tuple[Array, Array, None]:
    """BUG: the dissimilar pairs' term misses d's derivative 1 / d."""
    diff = x1 - x2
    d = np.sqrt((diff**2).sum(1))
    g = (y - (1 - y) * np.maximum(0, margin - d))[:, None] * diff * (dy / x1.shape[0])
    return g, -g, None


def contrastive_reference(
    x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor, margin: float = 2.0
) -> torch.Tensor:
    d = ((x1 - x2) ** 2).sum(1).sqrt()
    return (y * d**2 + (1 - y) * torch.relu(margin - d) ** 2).mean() / 2


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    svm_in = inputs(integers(6, 5, low=-2, high=3), labels(6, classes=5))
    found = [
        cache(
            "svm_hinge_int",
            svm_loss_forward,
            b,
            svm_in,
            svm_reference,
            subgradient=multiclass_hinge_subgradient,
        )
        for b in (svm_loss_backward, svm_loss_backward_kink_counted_once, svm_loss_backward_no_mean)
    ]
    l1_truth = difference_subgradient(sign_slopes, lambda p: 1 / p.size)
    found += [
        cache(
            "l1_loss_ties",
            l1_forward,
            b,
            at_the_targets,
            lambda p, t: (p - t).abs().mean(),
            subgradient=l1_truth,
            subgradient_inputs=2,
        )
        for b in (l1_backward, l1_backward_two_conventions, l1_backward_target_sign)
    ]
    found += [
        plain("smooth_l1_threshold", smooth_l1, b, at_the_threshold, torch.nn.functional.smooth_l1_loss)
        for b in (
            smooth_l1_backward,
            smooth_l1_backward_quadratic_doubled,
            smooth_l1_backward_linear_branch_d,
        )
    ]
    triplet_in = inputs(*[integers(8, 3, low=-1, high=2)] * 3)
    found += [
        cache("triplet_margin_int", triplet_forward, b, triplet_in, triplet_reference)
        for b in (triplet_backward, triplet_backward_negative_sign, triplet_backward_anchor_without_negative)
    ]
    pairs = inputs(normal(8, 4, scale=0.6), normal(8, 4, scale=0.6), labels(8, classes=2))
    found += [
        plain("contrastive", contrastive, b, pairs, contrastive_reference)
        for b in (contrastive_backward, contrastive_backward_no_over_d)
    ]
    return found
