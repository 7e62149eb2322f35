"""Small correct NumPy conv2d / maxpool2d / avgpool2d and variants with a bug planted in the
backward pass that shows only for some configurations:

- ``conv2d_stride``: dX is scattered with step 1, so it is wrong only when a stride is > 1;
- ``conv2d_padding``: dX is cropped from the corner, wrong only with padding > 0;
- ``conv2d_batch``: dW sums over the first sample only, wrong only with batch > 1;
- ``maxpool2d_overlap`` / ``avgpool2d_overlap``: dX is assigned per window tap instead of
  accumulated, wrong only where pooling windows overlap (stride < kernel);
- ``avgpool2d_nonsquare``: dX is divided by kh * kh instead of kh * kw, wrong only for
  non-square kernels.

They live in their own ``planted`` registry (never in the global one). Stride and padding are
(h, w) pairs; the loops run over kernel taps only, every pixel is vectorized.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

import gradcheck_kit as gk
from gradcheck_kit import strategies as gks
from gradcheck_kit.registry import Registry

Pair = tuple[int, int]
planted = Registry()


def _taps(kernel: Pair, stride: Pair, out: Pair) -> list[tuple[Pair, tuple[slice, slice]]]:
    """Each kernel tap with the strided slice of the padded input it reads."""
    return [
        (
            (i, j),
            (
                slice(i, i + stride[0] * (out[0] - 1) + 1, stride[0]),
                slice(j, j + stride[1] * (out[1] - 1) + 1, stride[1]),
            ),
        )
        for i in range(kernel[0])
        for j in range(kernel[1])
    ]


def _out(size: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    h, w = ((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding))
    return h, w


def _pad(x: np.ndarray, padding: Pair, value: float = 0.0) -> np.ndarray:
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _crop(dxp: np.ndarray, size: tuple[int, ...], padding: Pair) -> np.ndarray:
    return dxp[:, :, padding[0] : padding[0] + size[0], padding[1] : padding[1] + size[1]]


# -- convolution --------------------------------------------------------------------------------
def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: Pair = (1, 1), padding: Pair = (0, 0)):
    """y[n, f, o] = b[f] + sum_{c, k} w[f, c, k] * xpad[n, c, o*s + k]."""
    kernel = w.shape[2:]
    out = _out(x.shape[2:], kernel, stride, padding)
    xp = _pad(x, padding)
    y = np.zeros((x.shape[0], w.shape[0], *out), dtype=np.result_type(x, w))
    for (i, j), where in _taps(kernel, stride, out):
        y += np.einsum("nchw,fc->nfhw", xp[(..., *where)], w[:, :, i, j])
    return y + b[None, :, None, None]


def _conv2d_backward(bug: str | None):
    def backward(dy, x, w, b, *, stride: Pair = (1, 1), padding: Pair = (0, 0)):
        kernel = w.shape[2:]
        out = _out(x.shape[2:], kernel, stride, padding)
        xp = _pad(x, padding)
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        for (i, j), where in _taps(kernel, stride, out):
            n = 1 if bug == "batch" else x.shape[0]
            dw[:, :, i, j] = np.einsum("nchw,nfhw->fc", xp[(slice(0, n), ..., *where)], dy[:n])
            target = (slice(i, i + out[0]), slice(j, j + out[1])) if bug == "stride" else where
            dxp[(..., *target)] += np.einsum("nfhw,fc->nchw", dy, w[:, :, i, j])
        dx = dxp[:, :, : x.shape[2], : x.shape[3]] if bug == "padding" else _crop(dxp, x.shape[2:], padding)
        return dx, dw, dy.sum(axis=(0, 2, 3))

    return backward


def _conv_case(rng: np.random.Generator, *, geometry: gks.ConvGeometry, dtype: str) -> gk.Case:
    g = geometry
    shapes = (g.input_shape, g.weight_shape, (g.out_channels,))
    inputs = tuple(gks.values(rng, shape, dtype) for shape in shapes)
    return gk.Case(inputs, {"stride": g.stride, "padding": g.padding})


def conv_cases(**bounds: Any) -> st.SearchStrategy[gk.Case]:
    """Valid conv2d cases (no dilation, no groups); ``bounds`` go to ``conv_geometries``."""
    limits = dict(max_groups=1, max_dilation=1, max_in_channels=2, max_out_channels=2, max_side=6)
    geometries = gks.conv_geometries(2, **{**limits, **bounds})
    return gks.cases(_conv_case, geometry=geometries, dtype=st.just("float64"))


# -- pooling --------------------------------------------------------------------------------------
def maxpool2d(x: np.ndarray, *, kernel_size: Pair, stride: Pair, padding: Pair = (0, 0)) -> np.ndarray:
    """y[n, c, o] = max over the window at o*s of xpad (padded with -inf)."""
    out = _out(x.shape[2:], kernel_size, stride, padding)
    xp = _pad(x, padding, -np.inf)
    return np.max([xp[(..., *where)] for _, where in _taps(kernel_size, stride, out)], axis=0)


def _maxpool2d_backward(bug: str | None):
    def backward(dy, x, *, kernel_size: Pair, stride: Pair, padding: Pair = (0, 0)):
        out = _out(x.shape[2:], kernel_size, stride, padding)
        xp = _pad(x, padding, -np.inf)
        windows = np.array([xp[(..., *where)] for _, where in _taps(kernel_size, stride, out)])
        first = np.argmax(windows, axis=0)  # the first maximal tap wins ties, like torch
        dxp = np.zeros_like(xp)
        for t, (_, where) in enumerate(_taps(kernel_size, stride, out)):
            routed = np.where(first == t, dy, 0.0)
            if bug == "overlap":
                dxp[(..., *where)] = routed  # overwrites what an earlier overlapping window routed
            else:
                dxp[(..., *where)] += routed
        return _crop(dxp, x.shape[2:], padding)

    return backward


def avgpool2d(x: np.ndarray, *, kernel_size: Pair, stride: Pair, padding: Pair = (0, 0)) -> np.ndarray:
    """y[n, c, o] = mean of the window at o*s of xpad (zero padding counted, as torch's default)."""
    out = _out(x.shape[2:], kernel_size, stride, padding)
    xp = _pad(x, padding)
    total = sum(xp[(..., *where)] for _, where in _taps(kernel_size, stride, out))
    return total / (kernel_size[0] * kernel_size[1])


def _avgpool2d_backward(bug: str | None):
    def backward(dy, x, *, kernel_size: Pair, stride: Pair, padding: Pair = (0, 0)):
        out = _out(x.shape[2:], kernel_size, stride, padding)
        area = kernel_size[0] ** 2 if bug == "nonsquare" else kernel_size[0] * kernel_size[1]
        dxp = np.zeros_like(_pad(x, padding))
        for _, where in _taps(kernel_size, stride, out):
            if bug == "overlap":
                dxp[(..., *where)] = dy / area
            else:
                dxp[(..., *where)] += dy / area
        return _crop(dxp, x.shape[2:], padding)

    return backward


def _pool_case(rng: np.random.Generator, *, geometry: gks.PoolGeometry, dtype: str) -> gk.Case:
    return gk.Case((gks.values(rng, geometry.input_shape, dtype),), geometry.params())


def pool_cases(**bounds: Any) -> st.SearchStrategy[gk.Case]:
    """Valid 2-d pooling cases; ``bounds`` go to ``pool_geometries``."""
    geometries = gks.pool_geometries(2, **{"max_side": 6, **bounds})
    return gks.cases(_pool_case, geometry=geometries, dtype=st.just("float64"))


# -- the planted registry -----------------------------------------------------------------------
TRIGGERS = {  # layer -> what must be non-minimal in the shrunk case
    "conv2d_stride": "stride > 1",
    "conv2d_padding": "padding > 0",
    "conv2d_batch": "batch > 1",
    "maxpool2d_overlap": "stride < kernel",
    "avgpool2d_overlap": "stride < kernel",
    "avgpool2d_nonsquare": "kernel height != width",
}

for _bug in (None, "stride", "padding", "batch"):
    gk.register(
        f"conv2d_{_bug}" if _bug else "conv2d",
        conv2d,
        _conv2d_backward(_bug),
        cases=conv_cases(),
        into=planted,
    )
for _bug in (None, "overlap"):
    gk.register(
        f"maxpool2d_{_bug}" if _bug else "maxpool2d",
        maxpool2d,
        _maxpool2d_backward(_bug),
        cases=pool_cases(),
        into=planted,
    )
for _bug in (None, "overlap", "nonsquare"):
    gk.register(
        f"avgpool2d_{_bug}" if _bug else "avgpool2d",
        avgpool2d,
        _avgpool2d_backward(_bug),
        cases=pool_cases(),
        into=planted,
    )
