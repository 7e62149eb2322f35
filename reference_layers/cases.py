"""Hypothesis strategies of valid inputs for every reference layer (``gk.Case`` objects).

Hypothesis draws the small integers (shapes, geometry, dtype, memory layout) and a seed; the
values come from ``numpy.random.default_rng(seed)`` through ``gradcheck_kit.strategies.values``
(random sign times [0.1, 1]: no exact zeros, so ReLU kinks and max-pool ties are not hit by
accident). Sizes stay small so one ``gk.check`` takes milliseconds; float64 and float32 are both
drawn, every floating input gets the drawn memory layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from gradcheck_kit.registry import Case
from gradcheck_kit.strategies import (
    ConvGeometry,
    PoolGeometry,
    array_shapes,
    cases,
    conv_geometries,
    dtypes,
    memory_layouts,
    pool_geometries,
    values,
    with_layout,
)

Strategy = st.SearchStrategy[Case]


def _arrays(
    rng: np.random.Generator, shapes: list[tuple[int, ...]], dtype: str, layout: str, *, scale: float = 1.0
) -> list[Any]:
    return [with_layout(values(rng, shape, dtype, scale=scale), layout) for shape in shapes]


# -- element-wise and linear --------------------------------------------------------------------
def _elementwise_case(
    rng: np.random.Generator, *, shape: tuple[int, ...], dtype: str, layout: str, params: dict[str, Any]
) -> Case:
    (x,) = _arrays(rng, [shape], dtype, layout, scale=3.0)  # |x| in [0.3, 3]: reaches both tails
    return Case((x,), params)


def elementwise(params: st.SearchStrategy[dict[str, Any]] | None = None) -> Strategy:
    """One input of 1 to 3 axes (sides 1..5) for sigmoid, tanh, relu, leaky_relu."""
    return cases(
        _elementwise_case,
        shape=array_shapes(min_dims=1, max_dims=3, max_side=5),
        dtype=dtypes(),
        layout=memory_layouts(),
        params=params if params is not None else st.just({}),
    )


def leaky_relu_params() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from((0.01, 0.2, 1.5, -0.5)).map(lambda slope: {"negative_slope": slope})


def _linear_case(
    rng: np.random.Generator, *, lead: tuple[int, ...], features: tuple[int, int], dtype: str, layout: str
) -> Case:
    fan_in, fan_out = features
    shapes = [(*lead, fan_in), (fan_out, fan_in), (fan_out,)]
    return Case(tuple(_arrays(rng, shapes, dtype, layout)))


def linears() -> Strategy:
    """x (*lead, in) with 1 or 2 leading axes, w (out, in), b (out,); sides 1..5."""
    return cases(
        _linear_case,
        lead=array_shapes(min_dims=1, max_dims=2, max_side=4),
        features=st.tuples(st.integers(1, 5), st.integers(1, 5)),
        dtype=dtypes(),
        layout=memory_layouts(),
    )


# -- convolution and pooling --------------------------------------------------------------------
def _conv_case(
    rng: np.random.Generator, *, geometry: ConvGeometry, dtype: str, layout: str, bias: str
) -> Case:
    g = geometry
    b_shape = (g.out_channels,) if bias == "tied" else (g.out_channels, *g.output_size)
    inputs = _arrays(rng, [g.input_shape, g.weight_shape, b_shape], dtype, layout)
    params = g.params() if bias == "tied" else {**g.params(), "bias": bias}
    return Case(tuple(inputs), params)


def convolutions(ndim: int, *, bias: str = "tied") -> Strategy:
    """Valid ``ndim``-d convolutions (batch <= 3, channels <= 4, groups <= 2, sides <= 7, kernel
    <= 3, stride <= 3, padding <= 2, dilation <= 2) with a tied or untied bias."""
    return cases(
        _conv_case,
        geometry=conv_geometries(ndim, max_in_channels=4, max_out_channels=4, max_side=7),
        dtype=dtypes(),
        layout=memory_layouts(),
        bias=st.just(bias),
    )


def _pool_case(
    rng: np.random.Generator, *, geometry: PoolGeometry, dtype: str, layout: str, extra: dict[str, Any]
) -> Case:
    (x,) = _arrays(rng, [geometry.input_shape], dtype, layout)
    return Case((x,), {**geometry.params(), **extra})


def poolings(extra: st.SearchStrategy[dict[str, Any]] | None = None) -> Strategy:
    """Valid 2-d pooling windows (overlapping when stride < kernel), sides <= 7."""
    return cases(
        _pool_case,
        geometry=pool_geometries(2, max_side=7),
        dtype=dtypes(),
        layout=memory_layouts(),
        extra=extra if extra is not None else st.just({}),
    )


def avgpool_params() -> st.SearchStrategy[dict[str, Any]]:
    return st.booleans().map(lambda include: {"count_include_pad": include})


# -- the Gaussian filter ------------------------------------------------------------------------
def _gaussian_case(
    rng: np.random.Generator,
    *,
    lead: tuple[int, ...],
    length: int,
    kernels: int | None,
    taps: int,
    scaled: bool,
    padding: str,
    dtype: str,
    layout: str,
) -> Case:
    taps = 2 * taps + 1
    length += taps - 1 if padding == "valid" else 0
    shape = () if kernels is None else (kernels,)
    (x,) = _arrays(rng, [(*lead, length)], dtype, layout)
    mu = rng.uniform(-2.0, 2.0, size=shape).astype(dtype)  # mu != 0: an asymmetric kernel
    sigma = rng.uniform(0.5, 3.0, size=shape).astype(dtype)
    params = {"taps": taps, "scaled": scaled, "padding": padding}
    return Case((x, np.asarray(mu), np.asarray(sigma)), params)


def gaussian_filters(*, scaled: bool = True) -> Strategy:
    """x (L,) or (B, L) with L <= 8, one kernel (0-d mu, sigma) or 1..3 kernels ((K,) mu, sigma),
    taps 1..7 (odd), 'same' (mostly), 'valid' or 'full' zero padding; mu in [-2, 2], sigma in
    [0.5, 3]."""
    return cases(
        _gaussian_case,
        lead=array_shapes(min_dims=0, max_dims=1, min_side=2, max_side=3),
        length=st.integers(1, 8),
        kernels=st.one_of(st.none(), st.integers(1, 3)),
        taps=st.integers(0, 3),
        scaled=st.just(scaled),
        padding=st.sampled_from(("same", "same", "valid", "full")),
        dtype=dtypes(),
        layout=memory_layouts(),
    )


# -- loss and normalization ---------------------------------------------------------------------
def _softmax_case(rng: np.random.Generator, *, batch: int, classes: int, dtype: str, layout: str) -> Case:
    (logits,) = _arrays(rng, [(batch, classes)], dtype, layout, scale=4.0)
    labels = rng.integers(0, classes, size=batch).astype(np.int64)
    return Case((logits, labels))


def classifications() -> Strategy:
    """logits (N, C) in [-4, 4] with N 1..5, C 2..6, and int64 labels (N,)."""
    return cases(
        _softmax_case,
        batch=st.integers(1, 5),
        classes=st.integers(2, 6),
        dtype=dtypes(),
        layout=memory_layouts(),
    )


def _layer_norm_case(
    rng: np.random.Generator,
    *,
    lead: tuple[int, ...],
    normalized: tuple[int, ...],
    eps: float,
    dtype: str,
    layout: str,
) -> Case:
    shapes = [(*lead, *normalized), normalized, normalized]
    return Case(tuple(_arrays(rng, shapes, dtype, layout)), {"eps": eps})


def layer_norms() -> Strategy:
    """x (*lead, *normalized) with 1-2 leading and 1-2 normalized axes, weight and bias of the
    normalized shape."""
    return cases(
        _layer_norm_case,
        lead=array_shapes(min_dims=1, max_dims=2, max_side=3),
        normalized=array_shapes(min_dims=1, max_dims=2, min_side=2, max_side=5),
        eps=st.sampled_from((1e-5, 1e-3)),
        dtype=dtypes(),
        layout=memory_layouts(),
    )


def _batch_norm_case(
    rng: np.random.Generator,
    *,
    batch: int,
    channels: int,
    spatial: tuple[int, ...],
    eps: float,
    dtype: str,
    layout: str,
) -> Case:
    shapes = [(batch, channels, *spatial), (channels,), (channels,)]
    return Case(tuple(_arrays(rng, shapes, dtype, layout)), {"eps": eps})


def batch_norms() -> Strategy:
    """x (N, C, *spatial) with N 2..4, C 1..3 and 0-2 spatial axes, weight and bias (C,)."""
    return cases(
        _batch_norm_case,
        batch=st.integers(2, 4),
        channels=st.integers(1, 3),
        spatial=array_shapes(min_dims=0, max_dims=2, max_side=3),
        eps=st.sampled_from((1e-5, 1e-3)),
        dtype=dtypes(),
        layout=memory_layouts(),
    )
