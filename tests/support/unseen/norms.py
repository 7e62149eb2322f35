"""Normalizations: group norm (a float32-friendly kernel that upcasts to float64 inside), instance
norm without affine parameters, and a bias added just before batch normalization, whose true
gradient is exactly zero (normalization removes it)."""

from __future__ import annotations

import numpy as np
import torch

from .specimen import Array, Specimen, inputs, normal, plain

Grads = tuple[Array, Array, Array]

# -- group norm over (channels in a group, h, w) -------------------------------------------------------


def group_norm(x: Array, gamma: Array, beta: Array, *, G: int, eps: float = 1e-5) -> Array:
    dt = x.dtype
    x, gamma, beta = (a.astype(np.float64) for a in (x, gamma, beta))
    n = x.shape[0]
    xg = x.reshape(n, G, -1)
    mu, var = xg.mean(2, keepdims=True), xg.var(2, keepdims=True)
    xh = ((xg - mu) / np.sqrt(var + eps)).reshape(x.shape)
    return (gamma[None, :, None, None] * xh + beta[None, :, None, None]).astype(dt)


def _group_norm_back(
    dy: Array, x: Array, gamma: Array, G: int, *, per_channel: bool = False, novar: bool = False
) -> Grads:
    eps = 1e-5
    dt = x.dtype
    dy, x, gamma = (a.astype(np.float64) for a in (dy, x, gamma))
    n, c = x.shape[:2]
    xg = x.reshape(n, c, -1) if per_channel else x.reshape(n, G, -1)
    mu, var = xg.mean(2, keepdims=True), xg.var(2, keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    xh = (xg - mu) * inv
    # dx = (dxh - mean(dxh) - xh mean(dxh xh)) / sigma, the means over each group
    dxh = (dy * gamma[None, :, None, None]).reshape(xg.shape)
    term = xh * (dxh * xh).mean(2, keepdims=True)
    dx = (dxh - dxh.mean(2, keepdims=True) - (0 if novar else term)) * inv
    xh_full = xh.reshape(x.shape)
    if per_channel:  # the bug is in dx only: dgamma still uses the group-normalized xhat
        xgg = x.reshape(n, G, -1)
        xh_full = ((xgg - xgg.mean(2, keepdims=True)) / np.sqrt(xgg.var(2, keepdims=True) + eps)).reshape(
            x.shape
        )
    dgamma, dbeta = (dy * xh_full).sum((0, 2, 3)), dy.sum((0, 2, 3))
    return dx.reshape(x.shape).astype(dt), dgamma.astype(dt), dbeta.astype(dt)


def group_norm_backward(dy: Array, x: Array, gamma: Array, beta: Array, *, G: int) -> Grads:
    return _group_norm_back(dy, x, gamma, G)


def group_norm_backward_channel_stats(dy: Array, x: Array, gamma: Array, beta: Array, *, G: int) -> Grads:
    """BUG: dx's statistics are per channel, not per group (instance norm's backward)."""
    return _group_norm_back(dy, x, gamma, G, per_channel=True)


def group_norm_backward_no_variance_path(dy: Array, x: Array, gamma: Array, beta: Array, *, G: int) -> Grads:
    """BUG: the path through the variance (the xh mean(dxh xh) term) is dropped."""
    return _group_norm_back(dy, x, gamma, G, novar=True)


def gammas_near_one(rng: np.random.Generator, dtype: str) -> Array:
    return (1 + 0.3 * rng.normal(size=4)).astype(dtype)


# -- instance norm over (h, w), no affine --------------------------------------------------------------


def instance_norm(x: Array) -> Array:
    mu, var = x.mean((2, 3), keepdims=True), x.var((2, 3), keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5)


def _instance_norm_back(dy: Array, x: Array, *, eps: float = 1e-5, ddof: int = 0) -> tuple[Array]:
    mu, var = x.mean((2, 3), keepdims=True), x.var((2, 3), keepdims=True, ddof=ddof)
    inv = 1 / np.sqrt(var + eps)
    xh = (x - mu) * inv
    return ((dy - dy.mean((2, 3), keepdims=True) - xh * (dy * xh).mean((2, 3), keepdims=True)) * inv,)


def instance_norm_backward(dy: Array, x: Array) -> tuple[Array]:
    return _instance_norm_back(dy, x)


def instance_norm_backward_other_eps(dy: Array, x: Array) -> tuple[Array]:
    """BUG: eps 1e-3 in the backward, 1e-5 in the forward."""
    return _instance_norm_back(dy, x, eps=1e-3)


def instance_norm_backward_unbiased_variance(dy: Array, x: Array) -> tuple[Array]:
    """BUG: the backward's variance divides by n - 1; the forward's by n."""
    return _instance_norm_back(dy, x, ddof=1)


# -- a bias, then batch norm: the bias's true gradient is zero -----------------------------------------


def bias_then_batch_norm(x: Array, b: Array) -> Array:
    z = x + b
    mu, var = z.mean(0), z.var(0)
    return (z - mu) / np.sqrt(var + 1e-5)


def bias_then_batch_norm_backward(dy: Array, x: Array, b: Array) -> tuple[Array, Array]:
    z = x + b
    mu, var = z.mean(0), z.var(0)
    inv = 1 / np.sqrt(var + 1e-5)
    zh = (z - mu) * inv
    dz = (dy - dy.mean(0) - zh * (dy * zh).mean(0)) * inv
    return dz, dz.sum(0)  # db rounds to ~1e-16, not exactly zero


def bias_then_batch_norm_backward_bias_kept(dy: Array, x: Array, b: Array) -> tuple[Array, Array]:
    """BUG: db = sum(dy), as if normalization did not remove the bias."""
    dx, _ = bias_then_batch_norm_backward(dy, x, b)
    return dx, dy.sum(0)


def bias_then_batch_norm_backward_bias_zeros(dy: Array, x: Array, b: Array) -> tuple[Array, Array]:
    # db written as exact zeros: right, the true gradient is zero
    dx, _ = bias_then_batch_norm_backward(dy, x, b)
    return dx, np.zeros_like(b)


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    group_in = inputs(normal(2, 4, 3, 3), gammas_near_one, normal(4))
    found = [
        plain(
            "group_norm",
            group_norm,
            b,
            group_in,
            lambda x, g, b, G: torch.nn.functional.group_norm(x, G, g, b, eps=1e-5),
            params={"G": 2},
        )
        for b in (
            group_norm_backward,
            group_norm_backward_channel_stats,
            group_norm_backward_no_variance_path,
        )
    ]
    instance = (
        instance_norm_backward,
        instance_norm_backward_other_eps,
        instance_norm_backward_unbiased_variance,
    )
    found += [
        plain(
            "instance_norm",
            instance_norm,
            b,
            inputs(normal(2, 3, 4, 4)),
            lambda x: torch.nn.functional.instance_norm(x, eps=1e-5),
        )
        for b in instance
    ]
    biased = (
        bias_then_batch_norm_backward,
        bias_then_batch_norm_backward_bias_kept,
        bias_then_batch_norm_backward_bias_zeros,
    )
    found += [
        plain(
            "bias_before_batch_norm",
            bias_then_batch_norm,
            b,
            inputs(normal(6, 3), normal(3)),
            lambda x, b: torch.nn.functional.batch_norm(x + b, None, None, training=True, eps=1e-5),
        )
        for b in biased
    ]
    return found
