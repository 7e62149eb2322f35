"""Composite layers: causal self-attention with a -inf mask, a two-layer MLP with its softmax
loss as one CS231n layer over half-integer inputs, and 11-785 "mytorch" Linear and Conv1d
classes accumulating into dLdW / dLdb (the Conv1d also at 4x8x160, beyond element-wise)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import FLOAT64, Array, Specimen, cache, inputs, labels, layer, normal

Cache = tuple[Any, ...]

# -- causal attention ----------------------------------------------------------------------------------


def softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def attention_forward(q: Array, k: Array, v: Array) -> tuple[Array, Cache]:
    t, d = q.shape
    scores = q @ k.T / np.sqrt(d) + np.triu(np.full((t, t), -np.inf), 1)
    p = softmax(scores)  # exp(-inf) = 0: masked weights are exact zeros
    return p @ v, (q, k, v, p)


def _attention_backward(dout: Array, cache: Cache, bug: str | None = None) -> tuple[Array, Array, Array]:
    q, k, v, p = cache
    dp = dout @ v.T
    ds = p * (dp - (dp * p).sum(1, keepdims=True))
    scale = 1.0 if bug == "scale" else 1 / np.sqrt(q.shape[1])
    return ds @ k * scale, (ds @ q if bug == "dk" else ds.T @ q) * scale, p.T @ dout


def attention_backward(dout: Array, cache: Cache) -> tuple[Array, Array, Array]:
    return _attention_backward(dout, cache)


def attention_backward_no_scale(dout: Array, cache: Cache) -> tuple[Array, Array, Array]:
    """BUG: the scores' 1 / sqrt(d) missing from dq and dk."""
    return _attention_backward(dout, cache, "scale")


def attention_backward_dk_untransposed(dout: Array, cache: Cache) -> tuple[Array, Array, Array]:
    """BUG: dk = dS q, not dS^T q (square T x T scores hide it)."""
    return _attention_backward(dout, cache, "dk")


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    t, d = q.shape
    return torch.softmax(q @ k.T / d**0.5 + torch.triu(torch.full((t, t), float("-inf")), 1), 1) @ v


# -- two-layer MLP with softmax loss -------------------------------------------------------------------


def mlp_loss_forward(x: Array, w1: Array, b1: Array, w2: Array, b2: Array, y: Array) -> tuple[Array, Cache]:
    pre = x @ w1 + b1
    h = np.maximum(0, pre)
    p = softmax(h @ w2 + b2)
    return np.asarray(-np.log(p[np.arange(x.shape[0]), y]).mean()), (x, w1, w2, pre, h, p, y)


def _mlp_loss_backward(dout: Array, cache: Cache, bug: str | None = None) -> tuple[Any, ...]:
    x, w1, w2, pre, h, p, y = cache
    ds = p.copy()
    ds[np.arange(x.shape[0]), y] -= 1
    ds *= dout / x.shape[0]
    dh = ds @ w2.T * ((h >= 0) if bug == "mask" else (pre > 0))
    return dh @ w1.T, x.T @ dh, dh.sum(0), (pre if bug == "pre" else h).T @ ds, ds.sum(0), None


def mlp_loss_backward(dout: Array, cache: Cache) -> tuple[Any, ...]:
    return _mlp_loss_backward(dout, cache)


def mlp_loss_backward_mask_from_output(dout: Array, cache: Cache) -> tuple[Any, ...]:
    """BUG: ReLU's mask taken as relu(x) >= 0, true everywhere."""
    return _mlp_loss_backward(dout, cache, "mask")


def mlp_loss_backward_dw2_before_relu(dout: Array, cache: Cache) -> tuple[Any, ...]:
    """BUG: dW2 from the pre-activations instead of the hidden layer."""
    return _mlp_loss_backward(dout, cache, "pre")


def half_integers(rng: np.random.Generator, dtype: Any) -> Array:
    return (rng.integers(-3, 4, size=(5, 4)) / 2).astype(dtype)


def mlp_loss_reference(x: Any, w1: Any, b1: Any, w2: Any, b2: Any, y: Any) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(torch.relu(x @ w1 + b1) @ w2 + b2, y)


# -- mytorch Linear and Conv1d -------------------------------------------------------------------------


class Linear:
    def __init__(self, rng: np.random.Generator, dtype: Any = np.float64) -> None:
        self.W, self.b = rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=(3, 1)).astype(dtype)
        self.dLdW, self.dLdb = np.zeros_like(self.W), np.zeros_like(self.b)

    def forward(self, A: Array) -> Array:
        self.A, self.Ones = A, np.ones((A.shape[0], 1), dtype=A.dtype)
        return A @ self.W.T + self.Ones @ self.b.T

    def backward(self, dLdZ: Array) -> Array:
        self.dLdW += dLdZ.T @ self.A
        self.dLdb += dLdZ.T @ self.Ones
        return dLdZ @ self.W


class LinearAveragedDLdW(Linear):
    """BUG: dLdW divided by the batch size, a mean the forward never took."""

    def backward(self, dLdZ: Array) -> Array:
        self.dLdW += dLdZ.T @ self.A / self.A.shape[0]
        self.dLdb += dLdZ.T @ self.Ones
        return dLdZ @ self.W


class Conv1d:
    shape = (4, 3, 3)  # (out channels, in channels, kernel)

    def __init__(self, rng: np.random.Generator, dtype: Any = np.float64) -> None:
        self.W = rng.normal(size=self.shape).astype(dtype)
        self.b = rng.normal(size=self.shape[0]).astype(dtype)
        self.dLdW, self.dLdb = np.zeros_like(self.W), np.zeros_like(self.b)

    def forward(self, A: Array) -> Array:
        self.A = A
        k = self.W.shape[2]
        return np.stack(
            [
                np.tensordot(A[:, :, i : i + k], self.W, axes=((1, 2), (1, 2))) + self.b
                for i in range(A.shape[2] - k + 1)
            ],
            axis=2,
        )

    def _positions(self, dLdZ: Array) -> range:
        return range(dLdZ.shape[2])

    def _accumulate(self, contribution: Array) -> None:
        self.dLdW += contribution

    def backward(self, dLdZ: Array) -> Array:
        k = self.W.shape[2]
        dLdA = np.zeros_like(self.A)
        for i in self._positions(dLdZ):
            self._accumulate(np.tensordot(dLdZ[:, :, i], self.A[:, :, i : i + k], axes=(0, 0)))
            dLdA[:, :, i : i + k] += np.tensordot(dLdZ[:, :, i], self.W, axes=(1, 0))
        self.dLdb += dLdZ.sum((0, 2))
        return dLdA


class Conv1dLoopOffByOne(Conv1d):
    """BUG: the backward's loop stops one output position short."""

    def _positions(self, dLdZ: Array) -> range:
        return range(dLdZ.shape[2] - 1)


class Conv1dOverwritesDLdW(Conv1d):
    """BUG: dLdW = each position's contribution, so only the last survives."""

    def _accumulate(self, contribution: Array) -> None:
        self.dLdW = contribution.copy()


class Conv1dLarge(Conv1d):
    shape = (6, 8, 5)


class Conv1dLargeLoopOffByOne(Conv1dLarge, Conv1dLoopOffByOne):
    """BUG: as Conv1dLoopOffByOne, on 5120 input elements."""


WEIGHTS = [("W", "dLdW"), ("b", "dLdb")]


def conv1d_reference(A: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.conv1d(A, W, b)


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    attention = (attention_backward, attention_backward_no_scale, attention_backward_dk_untransposed)
    found = [
        cache("causal_attention_inf", attention_forward, b, inputs(*[normal(6, 4)] * 3), attention_reference)
        for b in attention
    ]
    mlp_in = inputs(
        half_integers, normal(4, 6), normal(6, scale=0.1), normal(6, 3), normal(3), labels(5, classes=3)
    )
    found += [
        cache("mlp2_softmax_loss", mlp_loss_forward, b, mlp_in, mlp_loss_reference)
        for b in (mlp_loss_backward, mlp_loss_backward_mask_from_output, mlp_loss_backward_dw2_before_relu)
    ]
    found += [
        layer("mytorch_linear", cls, inputs(normal(5, 4)), lambda A, W, b: A @ W.T + b.T, WEIGHTS)
        for cls in (Linear, LinearAveragedDLdW)
    ]
    found += [
        layer("mytorch_conv1d", cls, inputs(normal(2, 3, 9)), conv1d_reference, WEIGHTS)
        for cls in (Conv1d, Conv1dLoopOffByOne, Conv1dOverwritesDLdW)
    ]
    found += [
        layer(
            "mytorch_conv1d_large",
            cls,
            inputs(normal(4, 8, 160)),
            conv1d_reference,
            WEIGHTS,
            dtypes=FLOAT64,
            seeds=(0,),
        )
        for cls in (Conv1dLarge, Conv1dLargeLoopOffByOne)
    ]
    return found
