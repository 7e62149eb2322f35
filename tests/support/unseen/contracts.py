"""The layer's contract with its caller, and unusual but legal containers. Two layers break the
contract with a right gradient (a forward that writes into its input, a backward that writes into
dy): they must fail. One backward returns a view of a module-level buffer that the next call
overwrites: a hazard, reported but not scored. The rest are legal and judged on their gradient:
a float32-only kernel that casts inside, a read-only broadcast view as the gradient, an output that
is a view of the input, a Fortran-order reshape, a 0-d input whose gradient is a Python float."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .elementwise import elu
from .specimen import FLOAT64, Array, Specimen, cache, inputs, layer, normal, plain, sigmoid

# -- breaks the contract: a forward that centers its input in place ------------------------------------


class CenteredLinear:
    """Correct gradient, but forward writes into the caller's array."""

    def __init__(self, rng: np.random.Generator, dtype: Any = np.float64) -> None:
        self.W = rng.normal(size=(3, 4)).astype(dtype)
        self.dLdW = np.zeros_like(self.W)

    def forward(self, A: Array) -> Array:
        A -= A.mean(0)  # the caller's A is now centered too
        self.A = A
        return A @ self.W.T

    def backward(self, dLdZ: Array) -> Array:
        self.dLdW += dLdZ.T @ self.A
        g = dLdZ @ self.W
        return g - g.mean(0)


def shifted_normal(rng: np.random.Generator, dtype: Any) -> tuple[Array]:
    return (normal(5, 4)(rng, dtype) + 1,)


# -- breaks the contract: a cache-style backward that scales dout in place -----------------------------


def elu_forward(x: Array) -> tuple[Array, Array]:
    return elu(x), x


def elu_backward_in_place(dout: Array, cache: Array) -> Array:
    """Correct gradient, but computed in the caller's dout."""
    x = cache
    dout[x <= 0] *= np.exp(x[x <= 0])
    return dout


# -- a hazard: the gradient is a view of a buffer the next call overwrites ---------------------------

_BUFFERS: dict[tuple[Any, ...], Array] = {}


def tanh_into_buffer(x: Array) -> Array:
    return np.tanh(x)


def tanh_backward_reused_buffer(dy: Array, x: Array) -> tuple[Array]:
    # right values, but two calls hand back views of one buffer: the first result changes
    buffer = _BUFFERS.setdefault((x.shape, x.dtype), np.empty(x.shape, x.dtype))
    np.multiply(dy, 1 - np.tanh(x) ** 2, out=buffer)
    return (buffer[...],)


# -- a float32-only kernel: casts every input to float32 inside (an LSTM-like gate) --------------------


def gate_float32(x: Array, w: Array) -> Array:
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    return sigmoid(x32 @ w32) * np.tanh(x32 @ w32)


def gate_float32_backward(dy: Array, x: Array, w: Array) -> tuple[Array, Array]:
    x32, w32, dy32 = x.astype(np.float32), w.astype(np.float32), dy.astype(np.float32)
    a = x32 @ w32
    s, t = sigmoid(a), np.tanh(a)
    da = dy32 * (s * (1 - s) * t + s * (1 - t**2))
    return da @ w32.T, x32.T @ da


def gate_float32_backward_missing_sigmoid_term(dy: Array, x: Array, w: Array) -> tuple[Array, Array]:
    """BUG: the product rule's s (1 - s) t term (the sigmoid's slope) is lost."""
    x32, w32, dy32 = x.astype(np.float32), w.astype(np.float32), dy.astype(np.float32)
    a = x32 @ w32
    s, t = sigmoid(a), np.tanh(a)
    da = dy32 * (s * (1 - t**2))
    return da @ w32.T, x32.T @ da


# -- legal containers: a read-only broadcast view, a view output, Fortran order, a float -------------


def mean_of_all(x: Array) -> Array:
    return x.mean()


def mean_backward_broadcast_view(dy: Array, x: Array) -> tuple[Array]:
    # np.broadcast_to: read-only, zero strides, and right
    return (np.broadcast_to(dy / x.size, x.shape),)


def mean_backward_broadcast_view_off_by_one(dy: Array, x: Array) -> tuple[Array]:
    """BUG: divides by size - 1."""
    return (np.broadcast_to(dy / (x.size - 1), x.shape),)


def transpose(x: Array) -> Array:
    return x.T  # the output is a view of the input


def transpose_backward(dy: Array, x: Array) -> tuple[Array]:
    return (dy.T,)


def transpose_backward_fortran_reshape(dy: Array, x: Array) -> tuple[Array]:
    """BUG: a Fortran-order reshape to x's shape, which is not the transpose."""
    return (np.asfortranarray(dy).reshape(x.shape, order="F"),)


def prelu(x: Array, a: Array) -> Array:
    return np.where(x > 0, x, a * x)


def prelu_backward(dy: Array, x: Array, a: Array) -> tuple[Array, float]:
    # the scalar alpha's gradient as a Python float
    return dy * np.where(x > 0, 1.0, a), float(np.sum(dy * np.where(x > 0, 0.0, x)))


def prelu_backward_alpha_abs(dy: Array, x: Array, a: Array) -> tuple[Array, float]:
    """BUG: d(a x)/da = x for x < 0, written |x|."""
    return dy * np.where(x > 0, 1.0, a), float(np.sum(dy * np.where(x > 0, 0.0, np.abs(x))))


def alpha_quarter(rng: np.random.Generator, dtype: Any) -> Array:
    return np.asarray(0.25, dtype=dtype)


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    x_4x6 = inputs(normal(4, 6))
    found = [
        layer(
            "centered_linear",
            CenteredLinear,
            shifted_normal,
            lambda A, W: (A - A.mean(0)) @ W.T,
            [("W", "dLdW")],
            expect="contract",
            dtypes=FLOAT64,
        ),
        cache(
            "elu_cache",
            elu_forward,
            elu_backward_in_place,
            x_4x6,
            torch.nn.functional.elu,
            expect="contract",
            dtypes=FLOAT64,
        ),
        plain(
            "tanh_reused_buffer",
            tanh_into_buffer,
            tanh_backward_reused_buffer,
            x_4x6,
            torch.tanh,
            expect="hazard",
            dtypes=FLOAT64,
        ),
    ]
    gate_in = inputs(normal(4, 5), normal(5, 3, scale=0.5))
    found += [
        plain(
            "gate_float32_kernel",
            gate_float32,
            b,
            gate_in,
            lambda x, w: torch.sigmoid(x @ w) * torch.tanh(x @ w),
        )
        for b in (gate_float32_backward, gate_float32_backward_missing_sigmoid_term)
    ]
    found += [
        plain("mean_broadcast_view", mean_of_all, b, inputs(normal(5, 7)), torch.mean)
        for b in (mean_backward_broadcast_view, mean_backward_broadcast_view_off_by_one)
    ]
    found += [
        plain("transpose_view", transpose, b, x_4x6, lambda x: x.T, dtypes=FLOAT64)
        for b in (transpose_backward, transpose_backward_fortran_reshape)
    ]
    found += [
        plain(
            "prelu_scalar_alpha",
            prelu,
            b,
            inputs(normal(4, 6), alpha_quarter),
            lambda x, a: torch.where(x > 0, x, a * x),
        )
        for b in (prelu_backward, prelu_backward_alpha_abs)
    ]
    return found
