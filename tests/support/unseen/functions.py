"""torch.autograd.Function layers, each backward written with differentiable torch ops on the
saved tensors (gk's default second-order check differentiates it too): a linear layer with a
square weight, Huber at its threshold, tanh GELU, softmax cross-entropy, logsumexp and causal
attention. The ones at kinks and ties are in ``function_kinks``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import Array, Specimen, function, inputs, labels, normal

Function = torch.autograd.Function


class LinearFn(Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, w = ctx.saved_tensors
        return g @ w, g.T @ x, g.sum(0)


class LinearFnGradWTransposed(LinearFn):
    """BUG: dW = x^T g, the transpose of g^T x (the square 4 x 4 weight hides it)."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, w = ctx.saved_tensors
        return g @ w, x.T @ g, g.sum(0)


class HuberFn(Function):
    @staticmethod
    def forward(ctx: Any, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(p, t)
        return torch.nn.functional.huber_loss(p, t, delta=1.0)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, t = ctx.saved_tensors
        gd = torch.clamp(p - t, -1.0, 1.0) / p.numel()  # C1 at |d| == 1: clamp's both sides agree
        return g * gd, -g * gd


class HuberFnMeanOverBatch(HuberFn):
    """BUG: divided by the batch size, the forward's mean is over every element."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, t = ctx.saved_tensors
        gd = torch.clamp(p - t, -1.0, 1.0) / p.shape[0]
        return g * gd, -g * gd


def at_the_threshold(rng: np.random.Generator, dtype: Any) -> tuple[Array, Array]:
    t = rng.normal(size=(4, 5)).round(2)
    return (t + rng.choice([-2.0, -1.0, 0.0, 1.0, 0.3, 2.5], size=(4, 5))).astype(dtype), t.astype(dtype)


class GeluTanhFn(Function):
    cubic = 3.0  # d/dx of 0.044715 x^3

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))

    @classmethod
    def backward(cls, ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        c = (2 / torch.pi) ** 0.5
        t = torch.tanh(c * (x + 0.044715 * x**3))
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + cls.cubic * 0.044715 * x**2))


class GeluTanhFnCubicFactorLost(GeluTanhFn):
    """BUG: the derivative of 0.044715 x^3 written without its 3."""

    cubic = 1.0


class SoftmaxCEFn(Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, y)
        return torch.nn.functional.cross_entropy(x, y)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, y = ctx.saved_tensors
        one_hot = torch.nn.functional.one_hot(y, x.shape[1]).to(x.dtype)
        return g * (torch.softmax(x, 1) - one_hot) / x.shape[0], None


class SoftmaxCEFnNoMean(SoftmaxCEFn):
    """BUG: the batch mean's 1 / N is lost."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, y = ctx.saved_tensors
        return g * (torch.softmax(x, 1) - torch.nn.functional.one_hot(y, x.shape[1]).to(x.dtype)), None


class LogSumExpFn(Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = torch.logsumexp(x, 1)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        x, out = ctx.saved_tensors
        return g[:, None] * torch.exp(x - out[:, None])


class LogSumExpFnSoftmaxOverBatch(LogSumExpFn):
    """BUG: the softmax taken over the batch axis."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x, _) = ctx.saved_tensors
        return g[:, None] * torch.softmax(x, 0)


def _causal_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    t, d = q.shape
    mask = torch.triu(torch.full((t, t), float("-inf"), dtype=q.dtype), 1)
    return torch.softmax(q @ k.T / d**0.5 + mask, 1)


class CausalAttnFn(Function):
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(q, k, v)
        return _causal_weights(q, k) @ v

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k, v = ctx.saved_tensors
        p = _causal_weights(q, k)
        dp = g @ v.T
        ds = p * (dp - (dp * p).sum(1, keepdim=True)) / q.shape[1] ** 0.5
        return ds @ k, ds.T @ q, p.T @ g


class CausalAttnFnDvUntransposed(CausalAttnFn):
    """BUG: dv = P g, not P^T g (square T x T weights hide it)."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        dq, dk, _ = CausalAttnFn.backward(ctx, g)
        q, k, _ = ctx.saved_tensors
        return dq, dk, _causal_weights(q, k) @ g


def specimens() -> list[Specimen]:
    def pair(family: str, classes: tuple[type, ...], make: Any, reference: Any, **kw: Any) -> list[Specimen]:
        return [function(family, cls, make, reference, **kw) for cls in classes]

    return [
        *pair(
            "fn_linear_square",
            (LinearFn, LinearFnGradWTransposed),
            inputs(normal(5, 4), normal(4, 4), normal(4)),
            lambda x, w, b: x @ w.T + b,
        ),
        *pair(
            "fn_huber_threshold",
            (HuberFn, HuberFnMeanOverBatch),
            at_the_threshold,
            lambda p, t: torch.nn.functional.huber_loss(p, t, delta=1.0),
        ),
        *pair(
            "fn_gelu_tanh",
            (GeluTanhFn, GeluTanhFnCubicFactorLost),
            inputs(normal(5, 6, scale=2)),
            lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
        ),
        *pair(
            "fn_softmax_ce",
            (SoftmaxCEFn, SoftmaxCEFnNoMean),
            inputs(normal(6, 4), labels(6, classes=4)),
            torch.nn.functional.cross_entropy,
        ),
        *pair(
            "fn_logsumexp",
            (LogSumExpFn, LogSumExpFnSoftmaxOverBatch),
            inputs(normal(4, 5, scale=10 / 3)),
            lambda x: torch.logsumexp(x, 1),
        ),
        *pair(
            "fn_causal_attention",
            (CausalAttnFn, CausalAttnFnDvUntransposed),
            inputs(*[normal(5, 5)] * 3),
            lambda q, k, v: _causal_weights(q, k) @ v,
        ),
    ]
