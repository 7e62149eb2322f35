"""Shape helpers the engine and the diagnosis share: which axes are spatial, reading int-or-tuple
layer params (stride, padding), viewing a 1-d mask along one axis, shifting an array."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def spatial_axes(ndim: int) -> tuple[int, ...]:
    """N x C x spatial for ndim >= 3; a 1-d or 2-d signal's last axis otherwise."""
    return tuple(range(2, ndim)) if ndim >= 3 else ((ndim - 1,) if ndim else ())


def along(vector: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A 1-d ``vector`` viewed along ``axis`` of an ``ndim``-d array (for broadcasting)."""
    return vector.reshape([-1 if k == axis else 1 for k in range(ndim)])


def ints(value: Any) -> list[int]:
    """The ints of an int-or-tuple layer param (``stride=2``, ``padding=(1, 0)``); [] otherwise."""
    values = [value] if isinstance(value, int) else list(value) if isinstance(value, (tuple, list)) else []
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def largest(params: Mapping[str, Any], *keys: str, default: int = 0) -> int:
    """The largest int among the params ``keys`` (the first present), CS231n's conv_param dicts
    included (``{"conv_param": {"stride": 2, "pad": 1}}``)."""
    found = dict(params)
    for value in params.values():
        if isinstance(value, Mapping):
            found.update(value)
    for key in keys:
        if key in found:
            return max(ints(found[key]) or [default])
    return default


def shifts(n_axes: int, reach: int, *, negative_only: bool = False) -> list[tuple[int, ...]]:
    """Every shift vector with components in [-reach, reach] ([-reach, 0]), zero first."""
    values = range(-reach, 1) if negative_only else range(-reach, reach + 1)
    grid = np.array(np.meshgrid(*[list(values)] * n_axes, indexing="ij")).reshape(n_axes, -1).T
    return sorted((tuple(int(v) for v in row) for row in grid), key=lambda s: sum(map(abs, s)))


def shifted(a: np.ndarray, axes: tuple[int, ...], shift: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``a`` rolled by ``shift`` along ``axes`` and the mask of elements that did not wrap."""
    moved = np.roll(a, shift, axis=axes) if axes else a
    valid = np.ones(a.shape, dtype=bool)
    for k, s in zip(axes, shift):
        index = np.arange(a.shape[k])
        valid &= along((index >= s) if s >= 0 else (index < a.shape[k] + s), k, a.ndim)
    return moved, valid


def band(shape: tuple[int, ...], axes: tuple[int, ...], width: int) -> np.ndarray:
    """The elements within ``width`` of either end of any of ``axes``."""
    inside = np.zeros(shape, dtype=bool)
    for k in axes:
        index = np.arange(shape[k])
        inside |= along((index < width) | (index >= shape[k] - width), k, len(shape))
    return inside
