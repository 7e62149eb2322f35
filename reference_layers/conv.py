"""Convolution (1-d and 2-d) with stride, zero padding, dilation and groups, by im2col.

Shapes: x (N, C, *size), w (F, C/groups, *kernel), y (N, F, *out) with
out = (size + 2p - d(k-1) - 1) // s + 1 per axis. Like torch, "convolution" is a
cross-correlation:

    y[n, f, o] = b + sum_{c, k} w[f, c, k] * xpad[n, g(f)*C/groups + c, o*s + k*d]

The bias is either tied (one per filter, shape (F,), torch-style) or untied (one per filter and
output position, shape (F, *out), as in the SimplePyML seed).
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
    positive_int,
    require_shape,
    scatter,
    windows,
)

BIASES = ("tied", "untied")
SIDES = {1: "L", 2: "H, W", 3: "D, H, W"}
KERNELS = {1: "K", 2: "KH, KW", 3: "KD, KH, KW"}


@dataclass(frozen=True)
class _Geometry:
    """Validated parameters of one convolution call."""

    nd: int
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    bias: str
    size: tuple[int, ...]  # input spatial size (unpadded)
    kernel: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def padded(self) -> tuple[int, ...]:
        return tuple(n + 2 * p for n, p in zip(self.size, self.padding))


def _geometry(nd: int, x: Array, w: Array, b: Array | None, params: dict[str, Any]) -> _Geometry:
    stride = int_tuple("stride", params["stride"], nd)
    padding = int_tuple("padding", params["padding"], nd, minimum=0)
    dilation = int_tuple("dilation", params["dilation"], nd)
    groups = positive_int("groups", params["groups"])
    bias = choice("bias", params["bias"], BIASES)
    _check_shapes(nd, x, w, groups)
    size, kernel = tuple(x.shape[2:]), tuple(w.shape[2:])
    padded = tuple(n + 2 * p for n, p in zip(size, padding))
    out = output_size(padded, kernel, stride, dilation)
    if any(o < 1 for o in out):
        raise ValueError(
            f"kernel {kernel} with dilation={dilation} does not fit in input {size} padded by {padding}"
        )
    geometry = _Geometry(nd, stride, padding, dilation, groups, bias, size, kernel, out)
    _check_bias(b, w.shape[0], geometry)
    return geometry


def _check_shapes(nd: int, x: Array, w: Array, groups: int) -> None:
    if x.ndim != nd + 2 or w.ndim != nd + 2:
        raise ValueError(
            f"x has shape {tuple(x.shape)} and w {tuple(w.shape)}; conv{nd}d expects x (N, C, {SIDES[nd]}) "
            f"and w (F, C/groups, {KERNELS[nd]})"
        )
    channels, filters = x.shape[1], w.shape[0]
    if channels != w.shape[1] * groups or filters % groups:
        raise ValueError(
            f"groups={groups} does not fit x with {channels} channels and w of shape {tuple(w.shape)}: "
            "C must equal w.shape[1] * groups and F must be a multiple of groups"
        )


def _check_bias(b: Array | None, filters: int, g: _Geometry) -> None:
    expected = (filters,) if g.bias == "tied" else (filters, *g.out)
    if b is not None and tuple(b.shape) != expected:
        raise ValueError(f"b has shape {tuple(b.shape)}; bias={g.bias!r} expects {expected}")


def _columns(xp: Any, x: Array, g: _Geometry) -> Array:
    """im2col: (N, groups, C/groups * prod(kernel), prod(out)), a contiguous copy."""
    view = windows(pad(xp, x, g.padding), g.kernel, g.stride, g.dilation)  # (N, C, *kernel, *out)
    n = x.shape[0]
    return xp.reshape(view, (n, g.groups, -1, math.prod(g.out)))


def _add_bias(xp: Any, y: Array, b: Array | None, g: _Geometry) -> Array:
    if b is None:
        return y
    if g.bias == "tied":
        return y + xp.reshape(b, (-1, *(1,) * g.nd))  # broadcast over batch and positions
    return y + b  # untied: (F, *out) broadcasts over the batch only


def _forward(nd: int, x: Array, w: Array, b: Array | None, **params: Any) -> Array:
    g = _geometry(nd, x, w, b, params)
    xp = namespace(x, w, b)
    filters = w.shape[0]
    wmat = xp.reshape(w, (g.groups, filters // g.groups, -1))  # (G, F/G, C/G * K)
    y = xp.matmul(wmat, _columns(xp, x, g))  # (N, G, F/G, P): one GEMM per batch and group
    return _add_bias(xp, xp.reshape(y, (x.shape[0], filters, *g.out)), b, g)


def _backward(nd: int, dy: Array, x: Array, w: Array, b: Array | None, **params: Any) -> tuple[Array, ...]:
    g = _geometry(nd, x, w, b, params)
    xp = namespace(dy, x, w, b)
    n, filters = x.shape[0], w.shape[0]
    require_shape("dy", dy, (n, filters, *g.out))
    dyg = xp.reshape(dy, (n, g.groups, filters // g.groups, -1))  # (N, G, F/G, P)
    # dW[f, c, k] = sum_{n, o} dy[n, f, o] * xpad[n, c, o*s + k*d]   (dY correlated with X)
    dw = xp.sum(xp.matmul(dyg, xp.matrix_transpose(_columns(xp, x, g))), axis=0)
    # dX = full correlation of the stride-dilated dY with the 180°-rotated kernel; as im2col's
    # adjoint: columns W^T dY, then each tap's column added back where that tap read (col2im)
    wmat = xp.reshape(w, (g.groups, filters // g.groups, -1))
    dcols = xp.matmul(xp.matrix_transpose(wmat), dyg)  # (N, G, C/G * K, P)
    dcols = xp.reshape(dcols, (n, x.shape[1], *g.kernel, *g.out))
    dx = crop(scatter(xp, dcols, g.padded, g.stride, g.dilation), g.size, g.padding)
    return dx, xp.reshape(dw, w.shape), _bias_gradient(xp, dy, b, g)


def _bias_gradient(xp: Any, dy: Array, b: Array | None, g: _Geometry) -> Array | None:
    if b is None:
        return None
    if g.bias == "tied":  # db[f] = sum over batch and positions of dy[:, f]
        return xp.sum(dy, axis=(0, *range(2, 2 + g.nd)))
    return xp.sum(dy, axis=0)  # untied: db[f, o] = sum over the batch of dy[:, f, o]


# -- public functions ---------------------------------------------------------------------------
def conv1d(
    x: Array,
    w: Array,
    b: Array | None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: str = "tied",
) -> Array:
    """1-d convolution: x (N, C, L), w (F, C/groups, K), b (F,) tied or (F, L_out) untied."""
    return _forward(1, x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)


def conv1d_backward(
    dy: Array,
    x: Array,
    w: Array,
    b: Array | None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: str = "tied",
) -> tuple[Array, ...]:
    """(dx, dw, db) of ``conv1d``; db is None when b is None."""
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    return _backward(1, dy, x, w, b, **params)


def conv2d(
    x: Array,
    w: Array,
    b: Array | None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: str = "tied",
) -> Array:
    """2-d convolution: x (N, C, H, W), w (F, C/groups, KH, KW), b (F,) tied or (F, H_out, W_out)
    untied; stride, padding and dilation are ints or (h, w) pairs."""
    return _forward(2, x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)


def conv2d_backward(
    dy: Array,
    x: Array,
    w: Array,
    b: Array | None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: str = "tied",
) -> tuple[Array, ...]:
    """(dx, dw, db) of ``conv2d``; db is None when b is None."""
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    return _backward(2, dy, x, w, b, **params)


# -- torch references ---------------------------------------------------------------------------
def _torch_conv(nd: int, x: Any, w: Any, b: Any, **params: Any) -> Any:
    import torch.nn.functional as F

    conv = F.conv1d if nd == 1 else F.conv2d
    untied = params.pop("bias", "tied") == "untied"
    y = conv(x, w, None if untied else b, **params)
    return y + b if untied and b is not None else y


def torch_conv1d(x: Any, w: Any, b: Any, **params: Any) -> Any:
    return _torch_conv(1, x, w, b, **params)


def torch_conv2d(x: Any, w: Any, b: Any, **params: Any) -> Any:
    return _torch_conv(2, x, w, b, **params)


def _register(nd: int, forward: Any, backward: Any, reference: Any) -> None:
    for bias in BIASES:
        register(
            f"conv{nd}d" + ("_untied" if bias == "untied" else ""),
            forward=forward,
            backward=backward,
            cases=cases.convolutions(nd, bias=bias),
            reference=reference,
            description=f"A {nd}-d convolution with stride, padding, dilation and groups, and "
            + ("one bias per output channel." if bias == "tied" else "one bias per output element."),
        )


_register(1, conv1d, conv1d_backward, torch_conv1d)
_register(2, conv2d, conv2d_backward, torch_conv2d)
