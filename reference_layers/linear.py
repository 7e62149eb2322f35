"""Fully connected layers: ``linear`` and the seed's sigmoid-activated ``linear_sigmoid``.

Shapes follow torch: x (..., in), w (out, in), b (out,) or None, y = x w^T + b (..., out).
"""

from __future__ import annotations

from typing import Any

from gradcheck_kit import register

from . import cases
from ._xp import Array, namespace, require_shape
from .activations import sigmoid_slope, stable_sigmoid


def _check(x: Array, w: Array, b: Array | None) -> None:
    if x.ndim < 1 or w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"x has shape {tuple(x.shape)} and w {tuple(w.shape)}; expected x (..., in) and w (out, in)"
        )
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"b has shape {tuple(b.shape)}; expected ({w.shape[0]},), one per output")


def _affine(xp: Any, x: Array, w: Array, b: Array | None) -> Array:
    y = xp.matmul(x, xp.matrix_transpose(w))
    return y if b is None else y + b


def _affine_backward(xp: Any, dz: Array, x: Array, w: Array, b: Array | None) -> tuple[Array | None, ...]:
    require_shape("dy", dz, (*x.shape[:-1], w.shape[0]))
    # z = x w^T + b:  dx = dz w,  dw = dz^T x (summed over every leading axis),  db = sum dz
    dx = xp.matmul(dz, w)
    rows = (-1, w.shape[0]), (-1, w.shape[1])
    dw = xp.matmul(xp.matrix_transpose(xp.reshape(dz, rows[0])), xp.reshape(x, rows[1]))
    db = None if b is None else xp.sum(xp.reshape(dz, rows[0]), axis=0)
    return dx, dw, db


def linear(x: Array, w: Array, b: Array | None) -> Array:
    """y = x w^T + b."""
    _check(x, w, b)
    return _affine(namespace(x, w, b), x, w, b)


def linear_backward(dy: Array, x: Array, w: Array, b: Array | None) -> tuple[Array | None, ...]:
    """(dx, dw, db) of ``linear``; db is None when b is None."""
    _check(x, w, b)
    return _affine_backward(namespace(dy, x, w, b), dy, x, w, b)


def linear_sigmoid(x: Array, w: Array, b: Array | None) -> Array:
    """a = sigma(z), z = x w^T + b: the seed's sigmoid-activated linear layer."""
    _check(x, w, b)
    xp = namespace(x, w, b)
    return stable_sigmoid(xp, _affine(xp, x, w, b))


def linear_sigmoid_backward(dy: Array, x: Array, w: Array, b: Array | None) -> tuple[Array | None, ...]:
    """(dx, dw, db) of ``linear_sigmoid``."""
    _check(x, w, b)
    xp = namespace(dy, x, w, b)
    require_shape("dy", dy, (*x.shape[:-1], w.shape[0]))
    dz = dy * sigmoid_slope(xp, _affine(xp, x, w, b))  # dC/dz = dC/da . sigma'(z)
    # seed eq. 38: dC/dw = (dC/da . sigma'(z))^T * a^{l-1};  eq. 43: dC/da^{l-1} = (dC/da . sigma'(z)) * w
    return _affine_backward(xp, dz, x, w, b)


def torch_linear(x: Any, w: Any, b: Any) -> Any:
    import torch.nn.functional as F

    return F.linear(x, w, b)


def torch_linear_sigmoid(x: Any, w: Any, b: Any) -> Any:
    import torch
    import torch.nn.functional as F

    return torch.sigmoid(F.linear(x, w, b))


register(
    "linear",
    linear,
    linear_backward,
    cases=cases.linears(),
    reference=torch_linear,
    description="A fully connected layer, y = x w^T + b.",
)
register(
    "linear_sigmoid",
    linear_sigmoid,
    linear_sigmoid_backward,
    cases=cases.linears(),
    reference=torch_linear_sigmoid,
    description="A fully connected layer followed by a sigmoid, sigmoid(x w^T + b).",
)
