"""2-d max and average pooling with kernel, stride (overlapping windows allowed) and padding.

x (N, C, H, W) -> y (N, C, H_out, W_out), out = (size + 2p - k) // s + 1; stride defaults to the
kernel (torch's default) and padding may be at most half the kernel (torch's rule). Windows are
a strided view (taps first, then output positions); the backward routes each output's gradient
back through that view with one strided slice per kernel tap (col2im), so overlapping windows
accumulate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gradcheck_kit import register

from . import cases
from ._xp import (
    Array,
    choice,
    crop,
    int_tuple,
    namespace,
    output_size,
    pad,
    require_ndim,
    require_shape,
    scatter,
    windows,
)


@dataclass(frozen=True)
class _Pool:
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    size: tuple[int, ...]

    @property
    def padded(self) -> tuple[int, ...]:
        return tuple(n + 2 * p for n, p in zip(self.size, self.padding))

    @property
    def ones(self) -> tuple[int, ...]:
        return (1,) * len(self.kernel)

    @property
    def axes(self) -> tuple[int, ...]:
        """The kernel axes of a (N, C, *kernel, *out) window view."""
        return tuple(range(2, 2 + len(self.kernel)))


def _pool(nd: int, x: Array, kernel_size: Any, stride: Any, padding: Any) -> _Pool:
    require_ndim("x", x, (nd + 2,), "(N, C, H, W)" if nd == 2 else f"(N, C, {nd} spatial axes)")
    kernel = int_tuple("kernel_size", kernel_size, nd)
    strides = kernel if stride is None else int_tuple("stride", stride, nd)
    pads = int_tuple("padding", padding, nd, minimum=0)
    if any(2 * p > k for p, k in zip(pads, kernel)):
        raise ValueError(f"padding={padding!r} must be at most half of kernel_size={kernel_size!r}")
    pool = _Pool(kernel, strides, pads, tuple(x.shape[2:]))
    if any(o < 1 for o in output_size(pool.padded, kernel, strides, pool.ones)):
        raise ValueError(f"kernel_size={kernel_size!r} does not fit in input {pool.size} padded by {pads}")
    return pool


def _windows(xp: Any, x: Array, pool: _Pool, fill: float) -> Array:
    return windows(pad(xp, x, pool.padding, fill), pool.kernel, pool.stride, pool.ones)  # (N, C, *K, *out)


def _scatter_back(xp: Any, dcols: Array, pool: _Pool) -> Array:
    return crop(scatter(xp, dcols, pool.padded, pool.stride, pool.ones), pool.size, pool.padding)


# -- max ----------------------------------------------------------------------------------------
def maxpool2d(x: Array, *, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Array:
    """The maximum of each window; padding is -inf, so it never wins."""
    pool = _pool(2, x, kernel_size, stride, padding)
    xp = namespace(x)
    return xp.max(_windows(xp, x, pool, -math.inf), axis=pool.axes)


def maxpool2d_backward(
    dy: Array, x: Array, *, kernel_size: Any, stride: Any = None, padding: Any = 0
) -> tuple[Array]:
    # dx[i] = sum over the windows whose (first) maximum is x[i] of dy[window]; 0 elsewhere
    pool = _pool(2, x, kernel_size, stride, padding)
    xp = namespace(dy, x)
    win = _windows(xp, x, pool, -math.inf)
    n, c, taps = x.shape[0], x.shape[1], math.prod(pool.kernel)
    out = tuple(win.shape[2 + len(pool.kernel) :])
    require_shape("dy", dy, (n, c, *out))
    winner = xp.argmax(xp.reshape(win, (n, c, taps, *out)), axis=2)  # first maximum on ties, as torch
    tap = xp.reshape(xp.arange(taps), (taps, *pool.ones))
    d = xp.expand_dims(dy, axis=2)
    dcols = xp.where(tap == xp.expand_dims(winner, axis=2), d, xp.zeros_like(d))  # (N, C, K*K, *out)
    return (_scatter_back(xp, xp.reshape(dcols, (n, c, *pool.kernel, *out)), pool),)


# -- average ------------------------------------------------------------------------------------
def _divisor(xp: Any, x: Array, pool: _Pool, count_include_pad: bool) -> Array | int:
    """kernel area, or (count_include_pad=False) the number of real inputs in each window."""
    if count_include_pad or not any(pool.padding):
        return math.prod(pool.kernel)
    ones = xp.ones(pool.size, dtype=x.dtype)
    return xp.sum(_windows(xp, ones, pool, 0.0), axis=tuple(range(len(pool.kernel))))  # (*out)


def avgpool2d(
    x: Array, *, kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True
) -> Array:
    """The mean of each window (zero padding counted unless count_include_pad=False)."""
    pool = _pool(2, x, kernel_size, stride, padding)
    choice("count_include_pad", count_include_pad, (True, False))
    xp = namespace(x)
    return xp.sum(_windows(xp, x, pool, 0.0), axis=pool.axes) / _divisor(xp, x, pool, count_include_pad)


def avgpool2d_backward(
    dy: Array,
    x: Array,
    *,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    count_include_pad: bool = True,
) -> tuple[Array]:
    # every input of a window gets dy[window] / divisor; overlapping windows add up
    pool = _pool(2, x, kernel_size, stride, padding)
    choice("count_include_pad", count_include_pad, (True, False))
    xp = namespace(dy, x)
    require_shape("dy", dy, (*x.shape[:2], *output_size(pool.padded, pool.kernel, pool.stride, pool.ones)))
    share = dy / _divisor(xp, x, pool, count_include_pad)  # (N, C, *out)
    shape = (*share.shape[:2], *pool.kernel, *share.shape[2:])
    dcols = xp.broadcast_to(xp.reshape(share, (*share.shape[:2], *pool.ones, *share.shape[2:])), shape)
    return (_scatter_back(xp, dcols, pool),)


def torch_maxpool2d(x: Any, *, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Any:
    import torch.nn.functional as F

    return F.max_pool2d(x, kernel_size, stride, padding)


def torch_avgpool2d(
    x: Any, *, kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True
) -> Any:
    import torch.nn.functional as F

    return F.avg_pool2d(x, kernel_size, stride, padding, count_include_pad=count_include_pad)


register(
    "maxpool2d",
    maxpool2d,
    maxpool2d_backward,
    cases=cases.poolings(),
    reference=torch_maxpool2d,
    description="2-d max pooling over windows that may overlap, padding with -inf.",
)
register(
    "avgpool2d",
    avgpool2d,
    avgpool2d_backward,
    cases=cases.poolings(cases.avgpool_params()),
    reference=torch_avgpool2d,
    description="2-d average pooling over windows that may overlap, padding with zeros.",
)
