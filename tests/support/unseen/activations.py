"""Activations and small matrix layers: per-channel PReLU over integers (exact zeros, where the
slope a is a valid one-sided derivative and autograd's choice), swish, mish, tanh-approximated
GELU, weight normalization, a matrix inverse, a linear solve and a symmetric eigenvalue layer."""

from __future__ import annotations

from math import erf
from typing import Any

import numpy as np
import torch

from .specimen import Array, Specimen, inputs, integers, normal, plain, sigmoid

# -- PReLU, a slope per channel ------------------------------------------------------------------------

SLOPES = np.array([0.25, 0.1, 0.5])


def prelu(x: Array, a: Array) -> Array:
    return np.where(x > 0, x, a[:, None] * x)


def prelu_backward(dy: Array, x: Array, a: Array) -> tuple[Array, Array]:
    return dy * np.where(x > 0, 1.0, a[:, None]), (dy * np.where(x > 0, 0.0, x)).sum((0, 2))


def prelu_backward_slope_without_x(dy: Array, x: Array, a: Array) -> tuple[Array, Array]:
    """BUG: a's gradient counts the negative elements instead of summing x over them."""
    return dy * np.where(x > 0, 1.0, a[:, None]), (dy * (x <= 0)).sum((0, 2))


def prelu_backward_slope_wrong_axis(dy: Array, x: Array, a: Array) -> tuple[Array, Array]:
    """BUG: a's gradient summed over axes (1, 2): the batch of 3 fits the 3 channels' shape."""
    return dy * np.where(x > 0, 1.0, a[:, None]), (dy * np.where(x > 0, 0.0, x)).sum((1, 2))


def integers_and_slopes(rng: np.random.Generator, dtype: Any) -> tuple[Array, Array]:
    return integers(3, 3, 5, low=-2, high=3)(rng, dtype), SLOPES.astype(dtype)


# -- swish, mish, GELU (tanh) --------------------------------------------------------------------------


def swish(x: Array) -> Array:
    return x * sigmoid(x)


def swish_backward(dy: Array, x: Array) -> Array:
    s = sigmoid(x)
    return dy * (s + x * s * (1 - s))


def swish_backward_no_product_rule(dy: Array, x: Array) -> Array:
    """BUG: sigmoid(x) alone, the derivative of x's factor lost."""
    return dy * sigmoid(x)


def mish(x: Array) -> Array:
    return x * np.tanh(np.logaddexp(0, x))


def mish_backward(dy: Array, x: Array) -> Array:
    t = np.tanh(np.logaddexp(0, x))
    return dy * (t + x * (1 - t * t) * sigmoid(x))


def mish_backward_no_sigmoid(dy: Array, x: Array) -> Array:
    """BUG: softplus' derivative sigmoid(x) forgotten in the chain."""
    t = np.tanh(np.logaddexp(0, x))
    return dy * (t + x * (1 - t * t))


C_GELU = np.sqrt(2 / np.pi)


def gelu_tanh(x: Array) -> Array:
    return 0.5 * x * (1 + np.tanh(C_GELU * (x + 0.044715 * x**3)))


def _gelu_tanh_slope(x: Array, cubic: float) -> Array:
    t = np.tanh(C_GELU * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C_GELU * (1 + cubic * 0.044715 * x**2)


def gelu_tanh_backward(dy: Array, x: Array) -> Array:
    return dy * _gelu_tanh_slope(x, 3.0)


def gelu_tanh_backward_cubic_factor_lost(dy: Array, x: Array) -> Array:
    """BUG: the derivative of 0.044715 x^3 written without its 3."""
    return dy * _gelu_tanh_slope(x, 1.0)


def gelu_tanh_backward_exact_gelu(dy: Array, x: Array) -> Array:
    """BUG: the exact (erf) GELU's derivative for the tanh approximation: small but real error."""
    phi = 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2)))
    return (dy * (phi + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi))).astype(x.dtype)


# -- weight normalization, inverse, solve, eigenvalues -------------------------------------------------


def weight_norm(x: Array, v: Array, g: Array) -> Array:
    return x @ (g[:, None] * v / np.sqrt((v * v).sum(1, keepdims=True))).T


def _weight_norm_backward(dy: Array, x: Array, v: Array, g: Array, bug: str | None) -> tuple[Array, ...]:
    nv = np.sqrt((v * v).sum(1, keepdims=True))
    vh = v / nv
    dw = dy.T @ x
    dg = (dw * (v if bug == "dg" else vh)).sum(1)
    # w = g v / |v|: dv = g / |v| (dw - <dw, vh> vh), the projection off vh
    dv = g[:, None] / nv * (dw if bug == "projection" else dw - (dw * vh).sum(1, keepdims=True) * vh)
    return dy @ (g[:, None] * vh), dv, dg


def weight_norm_backward(dy: Array, x: Array, v: Array, g: Array) -> tuple[Array, ...]:
    return _weight_norm_backward(dy, x, v, g, None)


def weight_norm_backward_no_projection(dy: Array, x: Array, v: Array, g: Array) -> tuple[Array, ...]:
    """BUG: dv without the projection off v's direction."""
    return _weight_norm_backward(dy, x, v, g, "projection")


def weight_norm_backward_dg_unnormalized(dy: Array, x: Array, v: Array, g: Array) -> tuple[Array, ...]:
    """BUG: dg = <dw, v> instead of <dw, v / |v|>."""
    return _weight_norm_backward(dy, x, v, g, "dg")


def weight_norm_reference(x: torch.Tensor, v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return x @ (g[:, None] * v / v.norm(dim=1, keepdim=True)).T


def well_conditioned(*extra: tuple[int, ...]) -> Any:
    def make(rng: np.random.Generator, dtype: Any) -> tuple[Array, ...]:
        a = rng.normal(size=(4, 4)) + 4 * np.eye(4)
        return (a.astype(dtype), *(rng.normal(size=shape).astype(dtype) for shape in extra))

    return make


def inverse_backward(dy: Array, a: Array) -> Array:
    y = np.linalg.inv(a)
    return -y.T @ dy @ y.T


def inverse_backward_no_transposes(dy: Array, a: Array) -> Array:
    """BUG: -Y dy Y, the transposes of -Y^T dy Y^T forgotten."""
    y = np.linalg.inv(a)
    return -y @ dy @ y


def solve_backward(dy: Array, a: Array, b: Array) -> tuple[Array, Array]:
    db = np.linalg.solve(a.T, dy)
    return -db @ np.linalg.solve(a, b).T, db


def solve_backward_with_a(dy: Array, a: Array, b: Array) -> tuple[Array, Array]:
    """BUG: db solves with A instead of A^T."""
    db = np.linalg.solve(a, dy)
    return -db @ np.linalg.solve(a, b).T, db


def eigenvalues(a: Array) -> Array:
    return np.linalg.eigvalsh((a + a.T) / 2)


def eigenvalues_backward(dy: Array, a: Array) -> Array:
    # d lambda_i = v_i^T dA v_i; the symmetrization halves it onto A and A^T, which V diag V^T is
    _, v = np.linalg.eigh((a + a.T) / 2)
    return v @ np.diag(dy) @ v.T


def eigenvalues_backward_v_transposed(dy: Array, a: Array) -> Array:
    """BUG: V^T diag(dy) V, the eigenvectors taken as rows."""
    _, v = np.linalg.eigh((a + a.T) / 2)
    return v.T @ np.diag(dy) @ v


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    prelu_backwards = (prelu_backward, prelu_backward_slope_without_x, prelu_backward_slope_wrong_axis)
    found = [
        plain(
            "prelu_channel", prelu, b, integers_and_slopes, lambda x, a: torch.where(x > 0, x, a[:, None] * x)
        )
        for b in prelu_backwards
    ]
    found += [
        plain("swish", swish, b, inputs(normal(5, 6, scale=3)), lambda x: x * torch.sigmoid(x))
        for b in (swish_backward, swish_backward_no_product_rule)
    ]
    found += [
        plain(
            "mish",
            mish,
            b,
            inputs(normal(5, 6, scale=3)),
            lambda x: x * torch.tanh(torch.nn.functional.softplus(x)),
        )
        for b in (mish_backward, mish_backward_no_sigmoid)
    ]
    gelus = (gelu_tanh_backward, gelu_tanh_backward_cubic_factor_lost, gelu_tanh_backward_exact_gelu)
    found += [
        plain(
            "gelu_tanh_approx",
            gelu_tanh,
            b,
            inputs(normal(6, 8, scale=2)),
            lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
        )
        for b in gelus
    ]
    weight_norms = (
        weight_norm_backward,
        weight_norm_backward_no_projection,
        weight_norm_backward_dg_unnormalized,
    )
    found += [
        plain(
            "weight_norm",
            weight_norm,
            b,
            inputs(normal(5, 4), normal(3, 4, scale=2), normal(3)),
            weight_norm_reference,
        )
        for b in weight_norms
    ]
    found += [
        plain("matrix_inverse", np.linalg.inv, b, well_conditioned(), torch.linalg.inv)
        for b in (inverse_backward, inverse_backward_no_transposes)
    ]
    found += [
        plain("linear_solve", np.linalg.solve, b, well_conditioned((4, 2)), torch.linalg.solve)
        for b in (solve_backward, solve_backward_with_a)
    ]
    found += [
        plain(
            "eigvalsh_layer",
            eigenvalues,
            b,
            inputs(normal(5, 5)),
            lambda a: torch.linalg.eigvalsh((a + a.T) / 2),
        )
        for b in (eigenvalues_backward, eigenvalues_backward_v_transposed)
    ]
    return found
