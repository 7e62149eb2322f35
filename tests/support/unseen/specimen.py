"""What an unseen specimen is: a layer (a hand-written backward, correct or with one planted bug),
how to draw its inputs, and a float64 torch re-implementation of its forward that the ground
truth differentiates. No label: ``truth.label`` measures each case.

Four styles, as layers are written in the wild:

- ``plain``: ``forward(*inputs, **params)`` and ``backward(dy, *inputs, **params)`` returning one
  gradient per input;
- ``cache``: CS231n's ``forward(*inputs, **params) -> (out, cache)`` and
  ``backward(dout, cache)``;
- ``layer``: an 11-785 "mytorch" object, ``forward(*inputs)`` and ``backward(delta)``
  accumulating into gradient buffers named by ``weights`` (weight path -> gradient path);
- ``function``: a ``torch.autograd.Function`` subclass with its own ``backward``, run on torch
  tensors of the case's arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Array = np.ndarray
Maker = Callable[[np.random.Generator, Any], Array]
Inputs = Callable[[np.random.Generator, Any], tuple[Any, ...]]
# (every input, every gradient, dy) -> (within the subdifferential?, how far outside it)
Subgradient = Callable[[list[Array], list[Any], Array], tuple[bool, float]]

BOTH = ("float64", "float32")
FLOAT64 = ("float64",)


@dataclass(frozen=True)
class Specimen:
    """One layer of the battery. ``reference`` is torch float64 math of the forward with its
    signature (inputs, weights appended for a layer, then ``params``); ``subgradient``, where
    set, replaces autograd for the first ``subgradient_inputs`` inputs (kinks and ties, where
    autograd picks one subgradient of many; more than one where the inputs share a kink, as p
    and t in |p - t|); ``expect`` is ``"contract"`` (must fail whatever the gradient: it
    breaks the caller's contract) or ``"hazard"`` (no verdict is right: reported only)."""

    name: str  # "family/variant"
    style: str  # "plain" | "cache" | "layer" | "function"
    make: Inputs
    reference: Callable[..., Any]
    forward: Callable[..., Any] | None = None
    backward: Callable[..., Any] | None = None
    layer: Callable[[np.random.Generator, Any], Any] | None = None  # (rng, dtype) -> object
    weights: tuple[tuple[str, str], ...] = ()  # (weight path, gradient path), as the layer names them
    function: type | None = None  # the torch.autograd.Function of the function style
    params: dict[str, Any] = field(default_factory=dict)
    subgradient: Subgradient | None = None
    subgradient_inputs: int = 1  # how many leading inputs the subgradient test judges
    expect: str | None = None
    dtypes: tuple[str, ...] = BOTH
    seeds: tuple[int, ...] = (0, 1)
    elementwise: bool = False  # also checked in mode="elementwise"


def _pair(style: str) -> Callable[..., Specimen]:
    def build(
        family: str,
        forward: Callable[..., Any],
        backward: Callable[..., Any],
        make: Inputs,
        reference: Any,
        **kw: Any,
    ) -> Specimen:
        return Specimen(f"{family}/{backward.__name__}", style, make, reference, forward, backward, **kw)

    return build


plain = _pair("plain")  # a plain (forward, backward) pair, named after its family and its backward
cache = _pair("cache")  # a CS231n (out, cache) pair, named the same way


def layer(
    family: str, cls: type, make: Inputs, reference: Any, weights: list[tuple[str, str]], **kw: Any
) -> Specimen:
    """A stateful layer built as ``cls(rng, dtype)``, named after its family and its class."""
    return Specimen(
        f"{family}/{cls.__name__}", "layer", make, reference, layer=cls, weights=tuple(weights), **kw
    )


def function(family: str, cls: type, make: Inputs, reference: Any, **kw: Any) -> Specimen:
    """A ``torch.autograd.Function`` subclass, named after its family and its class."""
    return Specimen(f"{family}/{cls.__name__}", "function", make, reference, function=cls, **kw)


# -- input makers: (rng, dtype) -> array, drawn in the order given ----------------------------------


def normal(*shape: int, scale: float = 1.0) -> Maker:
    return lambda rng, dtype: (scale * rng.normal(size=shape)).astype(dtype)


def integers(*shape: int, low: int, high: int) -> Maker:
    """Integers in [low, high) as floats: ties, zero margins and exact kinks in every draw."""
    return lambda rng, dtype: rng.integers(low, high, size=shape).astype(dtype)


def labels(*shape: int, classes: int) -> Maker:
    """Integer class labels (int64 whatever the dtype: not differentiated)."""
    return lambda rng, dtype: rng.integers(0, classes, size=shape)


def inputs(*makers: Maker) -> Inputs:
    return lambda rng, dtype: tuple(make(rng, dtype) for make in makers)


def sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))
