"""Element-wise activations: sigmoid, tanh, relu, leaky_relu.

Each backward recomputes what it needs from x (stateless) and multiplies grad_output by the
local derivative: dx = dy * f'(x).
"""

from __future__ import annotations

from typing import Any

from gradcheck_kit import register

from . import cases
from ._xp import Array, namespace, require_shape


def stable_sigmoid(xp: Any, x: Array) -> Array:
    """1 / (1 + e^-x) without overflow: with e = e^-|x|, 1/(1+e) for x >= 0 and e/(1+e) below."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_slope(xp: Any, x: Array) -> Array:
    """sigma'(x) = sigma(x) (1 - sigma(x)) (seed eq. 19) = e / (1 + e)^2 with e = e^-|x|: the same
    value, symmetric in x, and without the cancellation in 1 - sigma(x) for large x."""
    e = xp.exp(-xp.abs(x))
    return e / ((1 + e) * (1 + e))


def sigmoid(x: Array) -> Array:
    """sigma(x) = 1 / (1 + e^-x)."""
    return stable_sigmoid(namespace(x), x)


def sigmoid_backward(dy: Array, x: Array) -> tuple[Array]:
    require_shape("dy", dy, x.shape)
    return (dy * sigmoid_slope(namespace(dy, x), x),)  # dx = dy * sigma'(x)


def tanh(x: Array) -> Array:
    return namespace(x).tanh(x)


def tanh_backward(dy: Array, x: Array) -> tuple[Array]:
    # tanh'(x) = 1 - tanh(x)^2
    require_shape("dy", dy, x.shape)
    t = namespace(dy, x).tanh(x)
    return (dy * (1 - t * t),)


def relu(x: Array) -> Array:
    xp = namespace(x)
    return xp.where(x > 0, x, xp.zeros_like(x))


def relu_backward(dy: Array, x: Array) -> tuple[Array]:
    # relu'(x) = 1 for x > 0 else 0 (0 at the kink, like torch)
    require_shape("dy", dy, x.shape)
    xp = namespace(dy, x)
    return (xp.where(x > 0, dy, xp.zeros_like(dy)),)


def leaky_relu(x: Array, *, negative_slope: float = 0.01) -> Array:
    """x for x > 0, negative_slope * x otherwise."""
    return namespace(x).where(x > 0, x, x * negative_slope)


def leaky_relu_backward(dy: Array, x: Array, *, negative_slope: float = 0.01) -> tuple[Array]:
    # d/dx = 1 for x > 0 else negative_slope (the slope at the kink, like torch)
    require_shape("dy", dy, x.shape)
    return (namespace(dy, x).where(x > 0, dy, dy * negative_slope),)


def torch_sigmoid(x: Any) -> Any:
    import torch

    return torch.sigmoid(x)


def torch_tanh(x: Any) -> Any:
    import torch

    return torch.tanh(x)


def torch_relu(x: Any) -> Any:
    import torch.nn.functional as F

    return F.relu(x)


def torch_leaky_relu(x: Any, *, negative_slope: float = 0.01) -> Any:
    import torch.nn.functional as F

    return F.leaky_relu(x, negative_slope)


register(
    "sigmoid",
    sigmoid,
    sigmoid_backward,
    cases=cases.elementwise(),
    reference=torch_sigmoid,
    description="The logistic sigmoid 1 / (1 + e^-x), computed without overflow for large inputs.",
)
register(
    "tanh",
    tanh,
    tanh_backward,
    cases=cases.elementwise(),
    reference=torch_tanh,
    description="The hyperbolic tangent, applied element by element.",
)
register(
    "relu",
    relu,
    relu_backward,
    cases=cases.elementwise(),
    reference=torch_relu,
    description="The rectified linear unit max(x, 0), whose gradient at 0 is taken as 0.",
)
register(
    "leaky_relu",
    leaky_relu,
    leaky_relu_backward,
    cases=cases.elementwise(cases.leaky_relu_params()),
    reference=torch_leaky_relu,
    description="The leaky ReLU: x where x is positive, negative_slope times x elsewhere.",
)
