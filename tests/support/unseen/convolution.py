"""Convolutions and pooling, mostly CS231n cache style with explicit loops: pixel shuffle, a
transposed conv2d, a depthwise conv2d (stride 1 and 2, and a 12x12 one where a bug touches one
row of outputs), and average pooling with padding counted in the divisor or not."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import FLOAT64, Array, Specimen, cache, inputs, normal, plain

Cache = tuple[Any, ...]
Grads = tuple[Array, Array, Array]

# -- pixel shuffle (r = 2): (n, c r^2, h, w) -> (n, c, h r, w r) ----------------------------------------


def pixel_shuffle(x: Array, *, r: int) -> Array:
    n, c, h, w = x.shape
    c //= r * r
    return x.reshape(n, c, r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c, h * r, w * r)


def pixel_shuffle_backward(dy: Array, x: Array, *, r: int) -> tuple[Array]:
    # the inverse reshuffle: undo the transpose's axes in reverse
    n, c, h, w = x.shape
    c //= r * r
    return (dy.reshape(n, c, h, r, w, r).transpose(0, 1, 3, 5, 2, 4).reshape(x.shape),)


def pixel_shuffle_backward_axes_swapped(dy: Array, x: Array, *, r: int) -> tuple[Array]:
    """BUG: the two sub-pixel axes swapped (transpose 5, 3 instead of 3, 5)."""
    n, c, h, w = x.shape
    c //= r * r
    return (dy.reshape(n, c, h, r, w, r).transpose(0, 1, 5, 3, 2, 4).reshape(x.shape),)


# -- transposed conv2d, no padding ---------------------------------------------------------------------


def conv_transpose2d_forward(x: Array, w: Array, b: Array, conv_param: dict[str, int]) -> tuple[Array, Cache]:
    # each input pixel stamps its kernel-weighted copy at stride s
    s = conv_param["stride"]
    n, _, H, W = x.shape
    _, co, k, _ = w.shape
    out = np.zeros((n, co, (H - 1) * s + k, (W - 1) * s + k), dtype=x.dtype)
    for i in range(H):
        for j in range(W):
            out[:, :, i * s : i * s + k, j * s : j * s + k] += np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    out += b[None, :, None, None]
    return out, (x, w, b, conv_param)


def _conv_transpose2d_back(
    dout: Array, cache: Cache, *, flip: bool = False, overwrite: bool = False
) -> Grads:
    x, w, _, cp = cache
    s = cp["stride"]
    _, _, H, W = x.shape
    k = w.shape[2]
    ww = w[:, :, ::-1, ::-1] if flip else w
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for i in range(H):
        for j in range(W):
            win = dout[:, :, i * s : i * s + k, j * s : j * s + k]
            dx[:, :, i, j] = np.einsum("nokl,cokl->nc", win, ww)
            c = np.einsum("nc,nokl->cokl", x[:, :, i, j], win)
            if overwrite:
                dw = c
            else:
                dw += c
    return dx, dw, dout.sum((0, 2, 3))


def conv_transpose2d_backward(dout: Array, cache: Cache) -> Grads:
    return _conv_transpose2d_back(dout, cache)


def conv_transpose2d_backward_flipped_kernel(dout: Array, cache: Cache) -> Grads:
    """BUG: dx correlates with the flipped kernel, as a regular conv's backward would."""
    return _conv_transpose2d_back(dout, cache, flip=True)


def conv_transpose2d_backward_dw_overwritten(dout: Array, cache: Cache) -> Grads:
    """BUG: dw = instead of dw +=: only the last input pixel's contribution survives."""
    return _conv_transpose2d_back(dout, cache, overwrite=True)


def conv_transpose2d_reference(x: Any, w: Any, b: Any, conv_param: dict[str, int]) -> torch.Tensor:
    return torch.nn.functional.conv_transpose2d(x, w, b, stride=conv_param["stride"])


# -- depthwise conv2d: one (k, k) filter per channel ---------------------------------------------------


def depthwise_conv_forward(x: Array, w: Array, b: Array, conv_param: dict[str, int]) -> tuple[Array, Cache]:
    s, p = conv_param["stride"], conv_param["pad"]
    n, c, H, W = x.shape
    k = w.shape[1]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    out = np.empty((n, c, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = (xp[:, :, i * s : i * s + k, j * s : j * s + k] * w[None]).sum((2, 3)) + b
    return out, (x, w, b, conv_param)


def _depthwise_conv_back(dout: Array, cache: Cache, *, assign: bool = False, nostride: bool = False) -> Grads:
    x, w, _, cp = cache
    s, p = cp["stride"], cp["pad"]
    H, W = x.shape[2:]
    k = w.shape[1]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    st = 1 if nostride else s
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            d = dout[:, :, i, j][:, :, None, None]
            if assign:
                dxp[:, :, i * st : i * st + k, j * st : j * st + k] = d * w[None]
            else:
                dxp[:, :, i * st : i * st + k, j * st : j * st + k] += d * w[None]
            dw += (d * xp[:, :, i * s : i * s + k, j * s : j * s + k]).sum(0)
    return dxp[:, :, p : p + H, p : p + W], dw, dout.sum((0, 2, 3))


def depthwise_conv_backward(dout: Array, cache: Cache) -> Grads:
    return _depthwise_conv_back(dout, cache)


def depthwise_conv_backward_dx_assigned(dout: Array, cache: Cache) -> Grads:
    """BUG: dx windows assigned (=), not accumulated: overlapping windows overwrite each other."""
    return _depthwise_conv_back(dout, cache, assign=True)


def depthwise_conv_backward_ignores_stride(dout: Array, cache: Cache) -> Grads:
    """BUG: dx's windows step by 1 whatever the forward's stride."""
    return _depthwise_conv_back(dout, cache, nostride=True)


def depthwise_conv_backward_dw_misses_last_row(dout: Array, cache: Cache) -> Grads:
    """BUG: dw's loop runs range(Ho - 1): the last output row never reaches dw."""
    last_row_only = dout.copy()
    full = _depthwise_conv_back(dout, cache)
    last_row_only[:, :, :-1] = 0
    last = _depthwise_conv_back(last_row_only, cache)
    return full[0], full[1] - last[1], full[2]


def depthwise_conv_reference(x: Any, w: Any, b: Any, conv_param: dict[str, int]) -> torch.Tensor:
    return torch.nn.functional.conv2d(
        x, w[:, None], b, stride=conv_param["stride"], padding=conv_param["pad"], groups=x.shape[1]
    )


# -- average pooling with padding ----------------------------------------------------------------------


def avg_pool_forward(x: Array, pool_param: dict[str, Any]) -> tuple[Array, Cache]:
    # include_pad: divide by k^2 everywhere; else by the window's count of real pixels
    k, s, p, inc = pool_param["k"], pool_param["stride"], pool_param["pad"], pool_param["include_pad"]
    n, c, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ones = np.pad(np.ones((H, W)), p)
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    out = np.empty((n, c, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            cnt = k * k if inc else ones[i * s : i * s + k, j * s : j * s + k].sum()
            out[:, :, i, j] = xp[:, :, i * s : i * s + k, j * s : j * s + k].sum((2, 3)) / cnt
    return out, (x, pool_param)


def _avg_pool_back(dout: Array, cache: Cache, *, include_pad: bool | None = None) -> Array:
    x, pp = cache
    k, s, p, inc = pp["k"], pp["stride"], pp["pad"], pp["include_pad"]
    if include_pad is not None:
        inc = include_pad
    n, c, H, W = x.shape
    ones = np.pad(np.ones((H, W)), p)
    dxp = np.zeros((n, c, H + 2 * p, W + 2 * p), dtype=x.dtype)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            cnt = k * k if inc else ones[i * s : i * s + k, j * s : j * s + k].sum()
            dxp[:, :, i * s : i * s + k, j * s : j * s + k] += dout[:, :, i, j][:, :, None, None] / cnt
    return dxp[:, :, p : p + H, p : p + W]


def avg_pool_backward(dout: Array, cache: Cache) -> Array:
    return _avg_pool_back(dout, cache)


def avg_pool_backward_excludes_padding(dout: Array, cache: Cache) -> Array:
    """BUG: the backward divides by the real pixels' count; the forward counts the padding."""
    return _avg_pool_back(dout, cache, include_pad=False)


def avg_pool_backward_includes_padding(dout: Array, cache: Cache) -> Array:
    """BUG: the other way round: the backward divides by k^2, the forward by the real count."""
    return _avg_pool_back(dout, cache, include_pad=True)


def avg_pool_reference(x: Any, pool_param: dict[str, Any]) -> torch.Tensor:
    pp = pool_param
    return torch.nn.functional.avg_pool2d(
        x, pp["k"], pp["stride"], pp["pad"], count_include_pad=pp["include_pad"]
    )


# -- the catalogue -------------------------------------------------------------------------------------

CONV_S1P1 = {"conv_param": {"stride": 1, "pad": 1}}
CONV_S2P1 = {"conv_param": {"stride": 2, "pad": 1}}
POOL_COUNTING_PADS = {"pool_param": {"k": 3, "stride": 2, "pad": 1, "include_pad": True}}
POOL_REAL_PIXELS = {"pool_param": {"k": 3, "stride": 2, "pad": 1, "include_pad": False}}


def specimens() -> list[Specimen]:
    found = [
        plain(
            "pixel_shuffle",
            pixel_shuffle,
            b,
            inputs(normal(2, 8, 3, 3)),
            lambda x, r: torch.nn.functional.pixel_shuffle(x, r),
            params={"r": 2},
            dtypes=FLOAT64,
        )
        for b in (pixel_shuffle_backward, pixel_shuffle_backward_axes_swapped)
    ]
    transposed = (
        conv_transpose2d_backward,
        conv_transpose2d_backward_flipped_kernel,
        conv_transpose2d_backward_dw_overwritten,
    )
    found += [
        cache(
            "conv_transpose2d",
            conv_transpose2d_forward,
            b,
            inputs(normal(2, 2, 3, 3), normal(2, 3, 3, 3), normal(3)),
            conv_transpose2d_reference,
            params={"conv_param": {"stride": 2}},
        )
        for b in transposed
    ]
    found += _depthwise()
    found += _pools()
    return found


def _depthwise() -> list[Specimen]:
    small = inputs(normal(2, 3, 5, 5), normal(3, 3, 3), normal(3))
    # 4 x 8 x 12 x 12: the last-row bug is one output row in twelve of dw's sum; one seed (slow loops)
    big = inputs(normal(4, 8, 12, 12), normal(8, 3, 3), normal(8))

    def family(
        name: str, make: Any, backwards: tuple[Any, ...], params: dict[str, Any], **kw: Any
    ) -> list[Specimen]:
        return [
            cache(name, depthwise_conv_forward, b, make, depthwise_conv_reference, params=params, **kw)
            for b in backwards
        ]

    return [
        *family(
            "depthwise_conv_s1",
            small,
            (depthwise_conv_backward, depthwise_conv_backward_dx_assigned),
            CONV_S1P1,
        ),
        *family(
            "depthwise_conv_s2",
            small,
            (depthwise_conv_backward, depthwise_conv_backward_ignores_stride),
            CONV_S2P1,
            dtypes=FLOAT64,
        ),
        *family(
            "depthwise_conv_big",
            big,
            (depthwise_conv_backward, depthwise_conv_backward_dw_misses_last_row),
            CONV_S1P1,
            dtypes=FLOAT64,
            seeds=(0,),
        ),
    ]


def _pools() -> list[Specimen]:
    pooled = inputs(normal(2, 2, 5, 5))

    def pool(name: str, backward: Any, params: dict[str, Any], **kw: Any) -> Specimen:
        return cache(name, avg_pool_forward, backward, pooled, avg_pool_reference, params=params, **kw)

    return [
        pool("avgpool_pad_incl", avg_pool_backward, POOL_COUNTING_PADS),
        pool("avgpool_pad_incl", avg_pool_backward_excludes_padding, POOL_COUNTING_PADS, dtypes=FLOAT64),
        pool("avgpool_pad_excl", avg_pool_backward, POOL_REAL_PIXELS, dtypes=FLOAT64),
        pool("avgpool_pad_excl", avg_pool_backward_includes_padding, POOL_REAL_PIXELS, dtypes=FLOAT64),
    ]
