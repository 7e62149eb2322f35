"""Layer normalization and batch normalization (training mode), both affine.

With xhat = (x - mean) / sqrt(var + eps) over the normalized axes (biased variance, like torch)
and y = weight * xhat + bias:

    dweight = sum dy * xhat,  dbias = sum dy   (over the axes weight is broadcast along)
    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * weight

(the mean and variance depend on every x in their group, hence the two mean terms).
"""

from __future__ import annotations

from typing import Any

from gradcheck_kit import register

from . import cases
from ._xp import Array, namespace, require_shape


def _normalize(xp: Any, x: Array, axes: tuple[int, ...], eps: float) -> tuple[Array, Array]:
    """(xhat, rstd) with statistics over ``axes``."""
    xc = x - xp.mean(x, axis=axes, keepdims=True)
    rstd = 1 / xp.sqrt(xp.mean(xc * xc, axis=axes, keepdims=True) + eps)
    return xc * rstd, rstd


def _normalize_backward(xp: Any, dxhat: Array, xhat: Array, rstd: Array, axes: tuple[int, ...]) -> Array:
    mean_d = xp.mean(dxhat, axis=axes, keepdims=True)
    mean_dx = xp.mean(dxhat * xhat, axis=axes, keepdims=True)
    return rstd * (dxhat - mean_d - xhat * mean_dx)


def _check_eps(eps: Any) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"eps={eps!r} must be a positive number")


# -- layer norm ---------------------------------------------------------------------------------
def _layer_axes(x: Array, weight: Array, bias: Array) -> tuple[int, ...]:
    k = weight.ndim
    if (
        k < 1
        or tuple(bias.shape) != tuple(weight.shape)
        or tuple(x.shape[x.ndim - k :]) != tuple(weight.shape)
    ):
        raise ValueError(
            f"x has shape {tuple(x.shape)}, weight {tuple(weight.shape)} and bias {tuple(bias.shape)}; "
            "weight and bias must both have the shape of x's last axes (the normalized shape)"
        )
    return tuple(range(x.ndim - k, x.ndim))


def layer_norm(x: Array, weight: Array, bias: Array, *, eps: float = 1e-5) -> Array:
    """Normalize over the last weight.ndim axes, then scale and shift."""
    _check_eps(eps)
    xp = namespace(x, weight, bias)
    xhat, _ = _normalize(xp, x, _layer_axes(x, weight, bias), eps)
    return xhat * weight + bias


def layer_norm_backward(
    dy: Array, x: Array, weight: Array, bias: Array, *, eps: float = 1e-5
) -> tuple[Array, ...]:
    """(dx, dweight, dbias)."""
    _check_eps(eps)
    xp = namespace(dy, x, weight, bias)
    axes = _layer_axes(x, weight, bias)
    require_shape("dy", dy, x.shape)
    xhat, rstd = _normalize(xp, x, axes, eps)
    lead = tuple(range(x.ndim - weight.ndim))  # weight is broadcast along the leading axes
    dx = _normalize_backward(xp, dy * weight, xhat, rstd, axes)
    return dx, xp.sum(dy * xhat, axis=lead), xp.sum(dy, axis=lead)


# -- batch norm ---------------------------------------------------------------------------------
def _batch_axes(x: Array, weight: Array, bias: Array) -> tuple[int, ...]:
    if x.ndim < 2 or tuple(weight.shape) != (x.shape[1],) or tuple(bias.shape) != (x.shape[1],):
        raise ValueError(
            f"x has shape {tuple(x.shape)}, weight {tuple(weight.shape)} and bias {tuple(bias.shape)}; "
            "expected x (N, C, ...) and weight, bias (C,)"
        )
    return (0, *range(2, x.ndim))


def _per_channel(xp: Any, v: Array, x: Array) -> Array:
    return xp.reshape(v, (-1, *(1,) * (x.ndim - 2)))


def batch_norm(x: Array, weight: Array, bias: Array, *, eps: float = 1e-5) -> Array:
    """Training-mode batch norm: statistics per channel over the batch and spatial axes."""
    _check_eps(eps)
    xp = namespace(x, weight, bias)
    xhat, _ = _normalize(xp, x, _batch_axes(x, weight, bias), eps)
    return xhat * _per_channel(xp, weight, x) + _per_channel(xp, bias, x)


def batch_norm_backward(
    dy: Array, x: Array, weight: Array, bias: Array, *, eps: float = 1e-5
) -> tuple[Array, ...]:
    """(dx, dweight, dbias)."""
    _check_eps(eps)
    xp = namespace(dy, x, weight, bias)
    axes = _batch_axes(x, weight, bias)
    require_shape("dy", dy, x.shape)
    xhat, rstd = _normalize(xp, x, axes, eps)
    dx = _normalize_backward(xp, dy * _per_channel(xp, weight, x), xhat, rstd, axes)
    return dx, xp.sum(dy * xhat, axis=axes), xp.sum(dy, axis=axes)


def torch_layer_norm(x: Any, weight: Any, bias: Any, *, eps: float = 1e-5) -> Any:
    import torch.nn.functional as F

    return F.layer_norm(x, tuple(weight.shape), weight, bias, eps)


def torch_batch_norm(x: Any, weight: Any, bias: Any, *, eps: float = 1e-5) -> Any:
    import torch.nn.functional as F

    return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)


register(
    "layer_norm",
    layer_norm,
    layer_norm_backward,
    cases=cases.layer_norms(),
    reference=torch_layer_norm,
    description="Layer normalization over the trailing axes (weight's shape), then learned scale and shift.",
)
register(
    "batch_norm",
    batch_norm,
    batch_norm_backward,
    cases=cases.batch_norms(),
    reference=torch_batch_norm,
    description="Batch normalization with the batch's statistics, then a learned scale and shift.",
)
