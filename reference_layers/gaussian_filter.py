"""The seed's Gaussian-filter layer: a 1-d filter whose mean mu and std sigma are learned.

Kernel taps m = -M/2 .. M/2 (M = ``taps``, odd) and, per kernel k,

    g(m) = exp(-(m - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))     (seed eq. 44; eq. 54 unscaled)
    O(n) = sum_m X(n - m) g(m),  X = 0 outside the signal          (seed eq. 65)

``padding='same'`` (the seed's layer) gives len(O) = len(X); 'valid' keeps the n where every tap
lands inside X, 'full' every n a tap reaches. mu != 0 makes g asymmetric, so dX is a correlation
of dO with g, not a convolution.

Inputs: x (..., L); mu and sigma 0-d (one kernel, O has x's shape) or (K,) (K kernels at once,
O (..., K, L_out), and dX sums over the kernels).
"""

from __future__ import annotations

import math
from typing import Any

from gradcheck_kit import register

from . import cases
from ._xp import Array, choice, crop, namespace, pad, positive_int, require_shape, scatter, windows

PADDINGS = ("same", "valid", "full")


def _validate(x: Array, mu: Array, sigma: Array, taps: Any, scaled: Any, padding: Any) -> int:
    """The zero padding on each side of x."""
    m = positive_int("taps", taps)
    if m % 2 == 0:
        raise ValueError(f"taps={taps!r} must be odd (taps m = -M/2 .. M/2 around 0)")
    choice("scaled", scaled, (True, False))
    choice("padding", padding, PADDINGS)
    if x.ndim < 1 or mu.ndim > 1 or tuple(mu.shape) != tuple(sigma.shape):
        raise ValueError(
            f"x has shape {tuple(x.shape)}, mu {tuple(mu.shape)} and sigma {tuple(sigma.shape)}; expected "
            "x (..., L) and mu, sigma both 0-d (one kernel) or both (K,) (K kernels)"
        )
    if padding == "valid" and x.shape[-1] < m:
        raise ValueError(f"padding='valid' needs at least taps={m} samples; x has {x.shape[-1]}")
    return {"same": m // 2, "valid": 0, "full": m - 1}[padding]


def _kernel(
    xp: Any, x: Array, mu: Array, sigma: Array, taps: int, scaled: bool
) -> tuple[Array, Array, Array]:
    """(g, u, sigma) with g (K, M) the kernels at m = -M/2..M/2, u = (m - mu) / sigma, sigma (K, 1)."""
    half = taps // 2
    m = xp.arange(-half, half + 1, dtype=x.dtype)
    s = xp.reshape(sigma, (-1, 1))
    u = (m - xp.reshape(mu, (-1, 1))) / s
    g = xp.exp(-0.5 * u * u)  # eq. 54
    return (g / (s * math.sqrt(2 * math.pi)) if scaled else g), u, s  # eq. 44


def gaussian_filter1d(
    x: Array, mu: Array, sigma: Array, *, taps: int = 5, scaled: bool = True, padding: str = "same"
) -> Array:
    """O(n) = sum_m X(n - m) g(m) for each kernel (mu[k], sigma[k])."""
    p = _validate(x, mu, sigma, taps, scaled, padding)
    xp = namespace(x, mu, sigma)
    g, _, _ = _kernel(xp, x, mu, sigma, taps, scaled)
    # windows: win[..., i, n] = Xpad(n + i); O(n) = sum_i win[i, n] g(M/2 - i): the flipped kernel
    win = windows(pad(xp, x, (p,)), (taps,), (1,), (1,))  # (..., M, L_out)
    y = xp.matmul(xp.flip(g, axis=-1), win)  # (..., K, L_out)
    return y if mu.ndim else y[..., 0, :]


def gaussian_filter1d_backward(
    dy: Array, x: Array, mu: Array, sigma: Array, *, taps: int = 5, scaled: bool = True, padding: str = "same"
) -> tuple[Array, Array, Array]:
    """(dx, dmu, dsigma); dmu and dsigma have mu's shape (0-d for one kernel)."""
    p = _validate(x, mu, sigma, taps, scaled, padding)
    xp = namespace(dy, x, mu, sigma)
    g, u, s = _kernel(xp, x, mu, sigma, taps, scaled)
    require_shape("dy", dy, (*x.shape[:-1], *mu.shape, x.shape[-1] + 2 * p - taps + 1))
    dyk = dy if mu.ndim else xp.expand_dims(dy, axis=-2)  # (..., K, L_out)
    xpad = pad(xp, x, (p,))
    win = windows(xpad, (taps,), (1,), (1,))
    # dC/dg(m) = sum_n dO(n) X(n - m): dO correlated with X, per kernel (summed over the batch)
    dg_flipped = xp.matmul(dyk, xp.matrix_transpose(win))  # (..., K, M)
    dg = xp.flip(xp.sum(xp.reshape(dg_flipped, (-1, *g.shape)), axis=0), axis=-1)
    # dg/dmu = g (m - mu) / sigma^2 (eqs. 51, 62); dg/dsigma = g ((m - mu)^2 / sigma^3 - 1/sigma)
    # scaled (eqs. 48, 73), g (m - mu)^2 / sigma^3 unscaled (eq. 59)
    dmu = xp.sum(dg * g * u / s, axis=-1)
    dsigma = xp.sum(dg * g * (u * u - (1.0 if scaled else 0.0)) / s, axis=-1)
    # dX(i) = sum_k sum_n dO_k(n) g_k(n - i) (eq. 80): a correlation of dO with g, summed over the
    # kernels; here as the adjoint of the windows: columns g_flipped^T dO added back per tap
    dcols = xp.matmul(xp.matrix_transpose(xp.flip(g, axis=-1)), dyk)  # (..., M, L_out)
    dx = crop(scatter(xp, dcols, xpad.shape[-1:], (1,), (1,)), x.shape[-1:], (p,))
    return dx, xp.reshape(dmu, mu.shape), xp.reshape(dsigma, sigma.shape)


def torch_gaussian_filter1d(
    x: Any, mu: Any, sigma: Any, *, taps: int = 5, scaled: bool = True, padding: str = "same"
) -> Any:
    """The same layer from torch ops: the kernel built from mu and sigma tensors, then conv1d
    (a correlation, so the kernel is flipped); autograd gives dmu and dsigma."""
    import torch
    import torch.nn.functional as F

    half = taps // 2
    m = torch.arange(-half, half + 1, dtype=x.dtype, device=x.device)
    s = sigma.reshape(-1, 1)
    g = torch.exp(-0.5 * ((m - mu.reshape(-1, 1)) / s) ** 2)
    g = g / (s * math.sqrt(2 * math.pi)) if scaled else g
    p = {"same": half, "valid": 0, "full": taps - 1}[padding]
    y = F.conv1d(x.reshape(-1, 1, x.shape[-1]), g.flip(-1).unsqueeze(1), padding=p)
    y = y.reshape(*x.shape[:-1], g.shape[0], y.shape[-1])
    return y if mu.ndim else y[..., 0, :]


register(
    "gaussian_filter1d",
    gaussian_filter1d,
    gaussian_filter1d_backward,
    cases=cases.gaussian_filters(),
    reference=torch_gaussian_filter1d,
    description="A 1-d Gaussian filter with learned centre mu and width sigma, its kernel a normal density.",
)
register(
    "gaussian_filter1d_unscaled",
    gaussian_filter1d,
    gaussian_filter1d_backward,
    cases=cases.gaussian_filters(scaled=False),
    reference=torch_gaussian_filter1d,
    description="A 1-d Gaussian filter with learned centre mu and width sigma, its kernel unscaled (peak 1).",
)
