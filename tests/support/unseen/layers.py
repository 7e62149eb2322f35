"""Composite "mytorch" objects: an MLP whose weights live in a list of member layers
(``layers[0].W``), and a tied autoencoder whose one square weight is used twice (encoder and
decoder), so a transposed term keeps its shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import Array, Specimen, inputs, layer, normal

# -- an MLP: Linear, Tanh, x2, Linear ------------------------------------------------------------------


class Linear:
    def __init__(self, i: int, o: int, rng: np.random.Generator, dtype: Any = np.float64) -> None:
        self.W = (rng.normal(size=(o, i)) / np.sqrt(i)).astype(dtype)
        self.b = rng.normal(size=(o, 1)).astype(dtype)
        self.dLdW, self.dLdb = np.zeros_like(self.W), np.zeros_like(self.b)

    def forward(self, A: Array) -> Array:
        self.A = A
        self.N = A.shape[0]
        self.Ones = np.ones((self.N, 1), dtype=A.dtype)
        return A @ self.W.T + self.Ones @ self.b.T

    def backward(self, dLdZ: Array) -> Array:
        self.dLdW += dLdZ.T @ self.A
        self.dLdb += dLdZ.T @ self.Ones
        return dLdZ @ self.W


class LinearAveragedDW(Linear):
    """BUG: dLdW divided by the batch size (a mean where the loss is a sum)."""

    def backward(self, dLdZ: Array) -> Array:
        self.dLdW += dLdZ.T @ self.A / self.N
        self.dLdb += dLdZ.T @ self.Ones
        return dLdZ @ self.W


class Tanh:
    def forward(self, Z: Array) -> Array:
        self.A = np.tanh(Z)
        return self.A

    def backward(self, dLdA: Array) -> Array:
        return dLdA * (1 - self.A**2)


class ScaleByTwo:
    def forward(self, A: Array) -> Array:
        return A * 2

    def backward(self, dLdZ: Array) -> Array:
        return dLdZ * 2


class ScaleByTwoInPlace(ScaleByTwo):
    """BUG: doubles its input in place, which is Tanh's cached output self.A."""

    def forward(self, A: Array) -> Array:
        A *= 2
        return A


class MLP:
    linear, middle = Linear, ScaleByTwo

    def __init__(self, rng: np.random.Generator, dtype: Any = np.float64) -> None:
        self.layers = [self.linear(4, 6, rng, dtype), Tanh(), self.middle(), self.linear(6, 3, rng, dtype)]

    def forward(self, A: Array) -> Array:
        for member in self.layers:
            A = member.forward(A)
        return A

    def backward(self, dLdZ: Array) -> Array:
        for member in reversed(self.layers):
            dLdZ = member.backward(dLdZ)
        return dLdZ


class MLPSkipsActivation(MLP):
    """BUG: the backward loop skips the Tanh."""

    def backward(self, dLdZ: Array) -> Array:
        for member in reversed(self.layers):
            if not isinstance(member, Tanh):
                dLdZ = member.backward(dLdZ)
        return dLdZ


class MLPAveragedDW(MLP):
    """BUG: both Linear members average dLdW over the batch."""

    linear = LinearAveragedDW


class MLPScalesInPlace(MLP):
    """BUG: the x2 member corrupts Tanh's cache (the backward then sees 2 tanh)."""

    middle = ScaleByTwoInPlace


MLP_WEIGHTS = [
    ("layers[0].W", "layers[0].dLdW"),
    ("layers[0].b", "layers[0].dLdb"),
    ("layers[3].W", "layers[3].dLdW"),
    ("layers[3].b", "layers[3].dLdb"),
]


def mlp_reference(A: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> torch.Tensor:
    return (2 * torch.tanh(A @ W1.T + b1.T)) @ W2.T + b2.T


# -- a tied autoencoder: tanh(A W^T) W -----------------------------------------------------------------


class TiedAutoencoder:
    def __init__(self, rng: np.random.Generator, dtype: Any = np.float64) -> None:
        self.W = (0.5 * rng.normal(size=(4, 4))).astype(dtype)
        self.dLdW = np.zeros_like(self.W)

    def forward(self, A: Array) -> Array:
        self.A = A
        self.H = np.tanh(A @ self.W.T)
        return self.H @ self.W

    def backward(self, dLdZ: Array) -> Array:
        # W is used twice: dLdW sums the decoder's and the encoder's terms
        self.dLdW += self.H.T @ dLdZ
        dH = dLdZ @ self.W.T
        dZ1 = dH * (1 - self.H**2)
        self.dLdW += dZ1.T @ self.A
        return dZ1 @ self.W


class TiedAutoencoderEncoderOnly(TiedAutoencoder):
    """BUG: dLdW has the encoder's term only."""

    def backward(self, dLdZ: Array) -> Array:
        dH = dLdZ @ self.W.T
        dZ1 = dH * (1 - self.H**2)
        self.dLdW += dZ1.T @ self.A
        return dZ1 @ self.W


class TiedAutoencoderDecoderTransposed(TiedAutoencoder):
    """BUG: the decoder's term transposed (dLdZ^T H); the square W hides it from the shapes."""

    def backward(self, dLdZ: Array) -> Array:
        self.dLdW += dLdZ.T @ self.H
        dH = dLdZ @ self.W.T
        dZ1 = dH * (1 - self.H**2)
        self.dLdW += dZ1.T @ self.A
        return dZ1 @ self.W


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    found = [
        layer("mlp_list", cls, inputs(normal(5, 4)), mlp_reference, MLP_WEIGHTS)
        for cls in (MLP, MLPSkipsActivation, MLPAveragedDW, MLPScalesInPlace)
    ]
    tied = (TiedAutoencoder, TiedAutoencoderEncoderOnly, TiedAutoencoderDecoderTransposed)
    found += [
        layer(
            "tied_autoencoder",
            cls,
            inputs(normal(5, 4)),
            lambda A, W: torch.tanh(A @ W.T) @ W,
            [("W", "dLdW")],
        )
        for cls in tied
    ]
    return found
