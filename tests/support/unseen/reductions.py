"""Reductions and reorderings along an axis: cumulative sum (also over 300 columns, where a bug
sits on one column of many), the max over an axis (distinct values, exact ties and ties 1e-10
apart, judged by the subdifferential), top-k and sort."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import FLOAT64, Array, Inputs, Maker, Specimen, inputs, normal, plain
from .subgradients import max_subgradient

# -- cumulative sum along axis 1 -----------------------------------------------------------------------


def cumulative_sum(x: Array) -> Array:
    return np.cumsum(x, axis=1)


def cumsum_backward(dy: Array, x: Array) -> tuple[Array]:
    # y_j = sum_{i <= j} x_i: dx_i = sum_{j >= i} dy_j, a reversed cumulative sum
    return (np.flip(np.cumsum(np.flip(dy, 1), 1), 1),)


def cumsum_backward_not_reversed(dy: Array, x: Array) -> tuple[Array]:
    """BUG: a forward cumulative sum of dy, the transpose's transpose."""
    return (np.cumsum(dy, 1),)


def cumsum_backward_over_rows(dy: Array, x: Array) -> tuple[Array]:
    """BUG: the reversed cumulative sum runs down axis 0."""
    return (np.flip(np.cumsum(np.flip(dy, 0), 0), 0),)


def cumsum_backward_loop(dy: Array, x: Array) -> tuple[Array]:
    # the same reversed sum, written as a loop from the last column
    g = np.zeros_like(dy)
    acc = np.zeros(dy.shape[0], dy.dtype)
    for j in range(dy.shape[1] - 1, -1, -1):
        acc += dy[:, j]
        g[:, j] = acc
    return (g,)


def cumsum_backward_loop_misses_column_0(dy: Array, x: Array) -> tuple[Array]:
    """BUG: the loop stops one early (range(n - 1, 0, -1)): column 0 is never written."""
    g = np.zeros_like(dy)
    acc = np.zeros(dy.shape[0], dy.dtype)
    for j in range(dy.shape[1] - 1, 0, -1):
        acc += dy[:, j]
        g[:, j] = acc
    return (g,)


def cumsum_reference(x: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(x, 1)


# -- max over axis 1 -----------------------------------------------------------------------------------


def row_max(x: Array) -> Array:
    return x.max(axis=1)


def max_backward_to_argmax(dy: Array, x: Array) -> tuple[Array]:
    # all of a row's dy to its first maximum: a vertex of the simplex when maxima tie
    g = np.zeros_like(x)
    g[np.arange(x.shape[0]), x.argmax(1)] = dy
    return (g,)


def max_backward_split_among_ties(dy: Array, x: Array) -> tuple[Array]:
    # dy shared equally among tied maxima: the simplex's centre, as valid as a vertex
    m = x == x.max(axis=1, keepdims=True)
    return (m * (dy[:, None] / m.sum(1, keepdims=True)),)


def max_backward_all_ties_in_full(dy: Array, x: Array) -> tuple[Array]:
    """BUG where maxima tie: every tied maximum gets the whole dy (right without ties)."""
    m = x == x.max(axis=1, keepdims=True)
    return (m * dy[:, None],)


def max_backward_global_mask(dy: Array, x: Array) -> tuple[Array]:
    """BUG: the mask compares against the global maximum, not each row's."""
    return ((x == x.max()) * dy[:, None],)


def max_reference(x: torch.Tensor) -> torch.Tensor:
    return x.max(1).values


def integers(*shape: int, low: int, high: int) -> Maker:
    """Small integers: ties in almost every row."""
    return lambda rng, dtype: rng.integers(low, high, size=shape).astype(dtype)


def near_ties(rng: np.random.Generator, dtype: Any) -> tuple[Array]:
    """Each row's runner-up 1e-10 below its maximum: distinct values, closer than any step."""
    x = normal(4, 6)(rng, dtype)
    j = x.argmax(1)
    k = (j + 1) % 6
    x[np.arange(4), k] = x[np.arange(4), j] - 1e-10
    return (x,)


# -- top-k and sort along axis 1 -----------------------------------------------------------------------


def top_k(x: Array, *, k: int) -> Array:
    idx = np.argsort(-x, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(x, idx, 1)


def top_k_backward(dy: Array, x: Array, *, k: int) -> tuple[Array]:
    idx = np.argsort(-x, axis=1, kind="stable")[:, :k]
    g = np.zeros_like(x)
    np.put_along_axis(g, idx, dy, 1)
    return (g,)


def top_k_backward_ascending(dy: Array, x: Array, *, k: int) -> tuple[Array]:
    """BUG: scatters dy to the k smallest values."""
    idx = np.argsort(x, axis=1)[:, :k]
    g = np.zeros_like(x)
    np.put_along_axis(g, idx, dy, 1)
    return (g,)


def top_k_backward_row0_indices(dy: Array, x: Array, *, k: int) -> tuple[Array]:
    """BUG: g[:, idx[0]] = dy scatters every row to row 0's top-k columns."""
    idx = np.argsort(-x, axis=1)[:, :k]
    g = np.zeros_like(x)
    g[:, idx[0]] = dy
    return (g,)


def sort_rows(x: Array) -> Array:
    return np.sort(x, axis=1)


def sort_backward(dy: Array, x: Array) -> tuple[Array]:
    # y = x[perm]: dx[perm] = dy, the inverse permutation applied to dy
    idx = np.argsort(x, axis=1)
    g = np.empty_like(x)
    np.put_along_axis(g, idx, dy, 1)
    return (g,)


def sort_backward_permutation_not_inverted(dy: Array, x: Array) -> tuple[Array]:
    """BUG: applies the sorting permutation to dy instead of its inverse."""
    idx = np.argsort(x, axis=1)
    return (np.take_along_axis(dy, idx, 1),)


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    rows_4x7 = inputs(normal(4, 7))
    found = [
        plain("cumsum", cumulative_sum, b, rows_4x7, cumsum_reference)
        for b in (cumsum_backward, cumsum_backward_not_reversed, cumsum_backward_over_rows)
    ]
    found += _maxima()
    found += [
        plain("top_k", top_k, b, rows_4x7, lambda x, k: torch.topk(x, k, 1).values, params={"k": 3})
        for b in (top_k_backward, top_k_backward_ascending, top_k_backward_row0_indices)
    ]
    found += [
        plain("sort", sort_rows, b, inputs(normal(3, 6)), lambda x: torch.sort(x, 1).values, dtypes=FLOAT64)
        for b in (sort_backward, sort_backward_permutation_not_inverted)
    ]
    # 300 columns: a wrong column is 1 in 300 of the gradient
    found += [
        plain("cumsum_long", cumulative_sum, b, inputs(normal(8, 300)), cumsum_reference)
        for b in (cumsum_backward_loop, cumsum_backward_loop_misses_column_0)
    ]
    return found


def _maxima() -> list[Specimen]:
    def family(name: str, make: Inputs, backwards: tuple[Any, ...], **kw: Any) -> list[Specimen]:
        return [
            plain(name, row_max, b, make, max_reference, subgradient=max_subgradient, **kw) for b in backwards
        ]

    distinct = (max_backward_to_argmax, max_backward_global_mask)
    ties = (max_backward_to_argmax, max_backward_split_among_ties, max_backward_all_ties_in_full)
    return [
        *family("max_axis", inputs(normal(4, 6)), distinct),
        *family("max_axis_ties", inputs(integers(5, 6, low=-2, high=3)), ties, dtypes=FLOAT64),
        *family(
            "max_axis_near_ties",
            near_ties,
            (max_backward_to_argmax, max_backward_all_ties_in_full),
            dtypes=FLOAT64,
        ),
    ]
