"""Smooth element-wise activations: ELU, softplus over a wide range, GELU (erf and tanh forms,
and each one's backward on the other's forward), LeCun's scaled tanh with mistyped constants,
and tanh with relative errors of 3e-6 and 3e-5 (a float64 check must see both)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .specimen import FLOAT64, Array, Specimen, inputs, normal, plain, sigmoid

# math.erf on arrays: scipy is no dependency of ours; the result keeps its argument's dtype
_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf(z: Array) -> Array:
    return _erf(z).astype(np.result_type(z), copy=False)


# -- ELU (alpha 1) -------------------------------------------------------------------------------------


def elu(x: Array) -> Array:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def elu_backward(dy: Array, x: Array) -> tuple[Array]:
    return (dy * np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))),)


def elu_backward_output_plus_one(dy: Array, x: Array) -> tuple[Array]:
    """BUG: out + alpha everywhere, the negative side's shortcut applied to x > 0 too."""
    return (dy * (elu(x) + 1.0),)


def elu_backward_forward_value(dy: Array, x: Array) -> tuple[Array]:
    """BUG: the negative side's slope is the forward value expm1(x), not exp(x)."""
    return (dy * np.where(x > 0, 1.0, np.expm1(np.minimum(x, 0))),)


# -- softplus ------------------------------------------------------------------------------------------


def softplus(x: Array) -> Array:
    return np.logaddexp(0, x)


def softplus_backward(dy: Array, x: Array) -> tuple[Array]:
    return (dy * sigmoid(x),)


def softplus_backward_mirrored(dy: Array, x: Array) -> tuple[Array]:
    """BUG: sigmoid(-x), the slope of softplus(-x)."""
    return (dy * sigmoid(-x),)


# -- GELU ----------------------------------------------------------------------------------------------

SQRT_2_OVER_PI = np.sqrt(2 / np.pi)


def gelu_erf(x: Array) -> Array:
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def gelu_tanh(x: Array) -> Array:
    return 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def gelu_erf_backward(dy: Array, x: Array) -> tuple[Array]:
    # Phi(x) + x phi(x)
    return (dy * (0.5 * (1 + erf(x / np.sqrt(2))) + x * np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)),)


def _gelu_tanh_derivative(x: Array, c: float) -> Array:
    u = c * (x + 0.044715 * x**3)
    t = np.tanh(u)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * c * (1 + 3 * 0.044715 * x**2)


def gelu_tanh_backward(dy: Array, x: Array) -> tuple[Array]:
    return (dy * _gelu_tanh_derivative(x, SQRT_2_OVER_PI),)


def gelu_tanh_backward_constant_0_7978(dy: Array, x: Array) -> tuple[Array]:
    """BUG: sqrt(2 / pi) typed as 0.7978 (relative 1e-4 in the constant)."""
    return (dy * _gelu_tanh_derivative(x, 0.7978),)


# -- LeCun's tanh: 1.7159 tanh(2x / 3) -----------------------------------------------------------------


def lecun_tanh(x: Array) -> Array:
    return 1.7159 * np.tanh(2 * x / 3)


def lecun_tanh_backward(dy: Array, x: Array) -> tuple[Array]:
    return (dy * 1.7159 * (2 / 3) * (1 - np.tanh(2 * x / 3) ** 2),)


def lecun_tanh_backward_two_thirds_as_0_6667(dy: Array, x: Array) -> tuple[Array]:
    """BUG: 2/3 typed as 0.6667 (relative 5e-5)."""
    return (dy * 1.7159 * 0.6667 * (1 - np.tanh(2 * x / 3) ** 2),)


def lecun_tanh_backward_amplitude_as_1_72(dy: Array, x: Array) -> tuple[Array]:
    """BUG: 1.7159 typed as 1.72 (relative 2.4e-3)."""
    return (dy * 1.72 * (2 / 3) * (1 - np.tanh(2 * x / 3) ** 2),)


def lecun_tanh_backward_scaled_1_003(dy: Array, x: Array) -> tuple[Array]:
    """BUG: a relative 3e-3 scale error."""
    return (1.003 * dy * 1.7159 * (2 / 3) * (1 - np.tanh(2 * x / 3) ** 2),)


# -- tanh with tiny relative errors (float64 only) -----------------------------------------------------


def tanh(x: Array) -> Array:
    return np.tanh(x)


def tanh_backward_scaled_1_000003(dy: Array, x: Array) -> tuple[Array]:
    """BUG: relative 3e-6, three times the float64 ground truth's tolerance."""
    return (dy * (1 - np.tanh(x) ** 2) * (1 + 3e-6),)


def tanh_backward_scaled_1_00003(dy: Array, x: Array) -> tuple[Array]:
    """BUG: relative 3e-5."""
    return (dy * (1 - np.tanh(x) ** 2) * (1 + 3e-5),)


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    x_4x6 = inputs(normal(4, 6))
    found = [
        plain("elu", elu, b, x_4x6, torch.nn.functional.elu)
        for b in (elu_backward, elu_backward_output_plus_one, elu_backward_forward_value)
    ]
    found += [
        plain("softplus_wide", softplus, b, inputs(normal(4, 6, scale=8)), torch.nn.functional.softplus)
        for b in (softplus_backward, softplus_backward_mirrored)
    ]
    found += _gelus()
    lecun = (
        lecun_tanh_backward,
        lecun_tanh_backward_two_thirds_as_0_6667,
        lecun_tanh_backward_amplitude_as_1_72,
        lecun_tanh_backward_scaled_1_003,
    )
    found += [
        plain("lecun_tanh", lecun_tanh, b, x_4x6, lambda x: 1.7159 * torch.tanh(2 * x / 3)) for b in lecun
    ]
    found += [
        plain("tanh_tiny_scale", tanh, b, x_4x6, torch.tanh, dtypes=FLOAT64)
        for b in (tanh_backward_scaled_1_000003, tanh_backward_scaled_1_00003)
    ]
    return found


def _gelus() -> list[Specimen]:
    x = inputs(normal(4, 6, scale=1.5))

    def gelu_tanh_reference(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(t, approximate="tanh")

    return [
        plain("gelu_erf", gelu_erf, gelu_erf_backward, x, torch.nn.functional.gelu),
        # the erf form's exact derivative on the tanh approximation: off by ~1e-3
        plain("gelu_tanh", gelu_tanh, gelu_erf_backward, x, gelu_tanh_reference),
        plain("gelu_tanh", gelu_tanh, gelu_tanh_backward, x, gelu_tanh_reference),
        plain("gelu_tanh", gelu_tanh, gelu_tanh_backward_constant_0_7978, x, gelu_tanh_reference),
    ]
