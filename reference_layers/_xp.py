"""The array namespace, parameter validation and sliding windows shared by the layers.

Layers find ``xp`` with array-api-compat and use it for everything the array API has. Sliding
windows use ``as_strided`` from the array's own library where it has one (NumPy or CuPy; looked
up in ``sys.modules`` through array-api-compat's helpers, so CuPy is never imported here), and
one strided slice per kernel tap elsewhere (JAX, torch).

JAX arrays are immutable: writes into part of an array go through ``set_at`` and ``add_at``,
in place where the library allows it (the NumPy path is unchanged) and JAX's ``.at`` otherwise.
"""

from __future__ import annotations

import itertools
import operator
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_cupy_array, is_jax_array, is_numpy_array

Array = Any  # a NumPy, CuPy, torch or JAX array


def namespace(*arrays: Array | None) -> Any:
    """The array-API namespace shared by ``arrays`` (``None`` entries, e.g. no bias, are skipped)."""
    return array_namespace(*[a for a in arrays if a is not None])


def library(x: Array) -> ModuleType:
    """``numpy`` or ``cupy``: the library that owns ``x`` (for ``as_strided``)."""
    if is_cupy_array(x):
        return sys.modules["cupy"]
    if is_numpy_array(x):
        return np
    raise TypeError(f"{type(x).__name__} is not a NumPy or CuPy array; reference layers accept those")


def set_at(a: Array, index: Any, values: Any) -> Array:
    """``a[index] = values``: in ``a`` itself, or a new array for an immutable one (JAX)."""
    if is_jax_array(a):
        return a.at[index].set(values)
    a[index] = values
    return a


def add_at(a: Array, index: Any, values: Any) -> Array:
    """``a[index] += values`` (a basic index: no repeated elements), in ``a`` itself where the
    library allows it, else a new array (JAX)."""
    if is_jax_array(a):
        return a.at[index].add(values)
    a[index] += values
    return a


# -- parameters ---------------------------------------------------------------------------------
def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def int_tuple(name: str, value: Any, ndim: int, *, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int or a tuple of ``ndim`` ints, each >= ``minimum``) as a tuple of ints."""
    rule = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    items = list(value) if isinstance(value, (tuple, list)) else [value] * ndim
    ints = [_as_int(v) for v in items]
    if len(ints) != ndim or any(v is None or v < minimum for v in ints):
        raise ValueError(f"{name}={value!r} must be {rule} (or a tuple of {ndim} of them)")
    return tuple(int(v) for v in ints if v is not None)


def positive_int(name: str, value: Any) -> int:
    return int_tuple(name, value, 1)[0]


def choice(name: str, value: Any, accepted: Sequence[Any]) -> Any:
    if not any(value is a or (type(value) is type(a) and value == a) for a in accepted):
        raise ValueError(f"{name}={value!r} is not accepted; accepted: {', '.join(map(repr, accepted))}")
    return value


def require_ndim(name: str, x: Array, ndims: Sequence[int], what: str) -> None:
    if x.ndim not in ndims:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {what}")


def require_shape(name: str, x: Array, expected: Sequence[int]) -> None:
    """``dy`` must have the forward output's shape (broadcasting would hide a wrong one)."""
    if tuple(x.shape) != tuple(expected):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}; expected {tuple(expected)}, the forward output's"
        )


# -- padding ------------------------------------------------------------------------------------
def pad(xp: Any, x: Array, padding: Sequence[int], value: float = 0.0) -> Array:
    """``x`` with ``padding[i]`` entries of ``value`` on both sides of its last len(padding) axes."""
    if not any(padding):
        return x
    nd = len(padding)
    size = tuple(n + 2 * p for n, p in zip(x.shape[-nd:], padding))
    out = xp.full((*x.shape[:-nd], *size), value, dtype=x.dtype)
    return set_at(out, last_axes(crop_slices(x.shape[-nd:], padding)), x)


def last_axes(index: Sequence[Any]) -> tuple[Any, ...]:
    """An index applying ``index`` to the last len(index) axes: ``(..., *index)``."""
    return (Ellipsis, *index)


def crop_slices(size: Sequence[int], padding: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(p, p + n) for n, p in zip(size, padding))


def crop(x: Array, size: Sequence[int], padding: Sequence[int]) -> Array:
    """The inverse of ``pad``: the centre ``size`` of the last len(padding) axes."""
    return x if not any(padding) else x[last_axes(crop_slices(size, padding))]


# -- sliding windows (im2col and its adjoint, col2im) -------------------------------------------
def output_size(
    size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[int, ...]:
    """Windows that fit in ``size`` (already padded): (n - d(k-1) - 1) // s + 1 per axis."""
    return tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(size, kernel, stride, dilation))


def windows(x: Array, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> Array:
    """A read-only view of ``x`` (..., *size) as (..., *kernel, *out):
    ``view[..., k, o] = x[..., o * stride + k * dilation]`` along each of the last len(kernel) axes.

    Taps come before output positions so that one tap is one strided slice (see ``scatter``).
    A library without ``as_strided`` (JAX, torch) gets a copy: the taps' slices stacked."""
    nd = len(kernel)
    out = output_size(x.shape[-nd:], kernel, stride, dilation)
    if not (is_numpy_array(x) or is_cupy_array(x)):
        return _stacked_windows(x, kernel, out, stride, dilation)
    steps = x.strides[-nd:]
    strides = (
        *x.strides[:-nd],
        *(a * d for a, d in zip(steps, dilation)),
        *(a * s for a, s in zip(steps, stride)),
    )
    shape = (*x.shape[:-nd], *kernel, *out)
    return library(x).lib.stride_tricks.as_strided(x, shape=shape, strides=strides)


def _stacked_windows(
    x: Array, kernel: Sequence[int], out: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> Array:
    nd = len(kernel)
    taps = itertools.product(*(range(k) for k in kernel))
    slices = [x[last_axes(tap_slices(tap, out, stride, dilation))] for tap in taps]
    stacked = namespace(x).stack(slices, axis=x.ndim - nd)  # (..., prod(kernel), *out)
    return namespace(x).reshape(stacked, (*x.shape[:-nd], *kernel, *out))


def tap_slices(
    tap: Sequence[int], out: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[slice, ...]:
    """Where one kernel tap reads from: ``t*d, t*d + s, ..., t*d + s*(out-1)`` along each axis."""
    return tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, o, s, d in zip(tap, out, stride, dilation))


def scatter(
    xp: Any,
    columns: Array,
    size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> Array:
    """The adjoint of ``windows`` (col2im): ``columns`` (..., *kernel, *out) summed back into an
    array (..., *size). One strided slice per kernel tap, so the loop runs over the k^d taps and
    every pixel is vectorized (no ``add.at``)."""
    nd = len(size)
    kernel, out = columns.shape[-2 * nd : -nd], columns.shape[-nd:]
    lead = columns.shape[: -2 * nd]
    dx = xp.zeros((*lead, *size), dtype=columns.dtype)
    for tap in itertools.product(*(range(k) for k in kernel)):
        tap_columns = columns[last_axes((*tap, *(slice(None),) * nd))]
        dx = add_at(dx, last_axes(tap_slices(tap, out, stride, dilation)), tap_columns)
    return dx
