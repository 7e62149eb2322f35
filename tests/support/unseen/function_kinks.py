"""torch.autograd.Function layers at kinks and ties, over integer values: elementwise maximum
(ties a == b), max-pooling over windows of 2 (tied maxima), a multiclass SVM (zero margins) and
L1 (p == t). Autograd picks one subgradient of many there, so each is judged by a subgradient
test over every input sharing the kink: a Function may split a tie its own way, but never
give both sides the full gradient, nor count a zero margin in one place and not the other."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import Array, Specimen, function, inputs, integers, labels
from .subgradients import (
    difference_subgradient,
    maximum_subgradient,
    multiclass_hinge_subgradient,
    window_max_subgradient,
)

Function = torch.autograd.Function


class MaximumFn(Function):
    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return torch.maximum(a, b)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = ctx.saved_tensors
        return g * (a >= b), g * (b > a)  # a tie goes to a: (1, 0), a valid split


class MaximumFnBothTiesFull(MaximumFn):
    """BUG: a tie gives the full gradient to both a and b (>= on both sides)."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = ctx.saved_tensors
        return g * (a >= b), g * (b >= a)


class MaxPool1dFn(Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.reshape(x.shape[0], -1, 2).amax(-1)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        windows = x.reshape(x.shape[0], -1, 2)
        first = torch.argmax((windows == windows.amax(-1, keepdim=True)).to(torch.int8), -1, keepdim=True)
        mask = torch.zeros_like(windows).scatter_(-1, first, 1.0)  # the first of tied maxima
        return (mask * g[..., None]).reshape(x.shape)


class MaxPool1dFnAllTiesFull(MaxPool1dFn):
    """BUG: every tied maximum of a window gets the window's full gradient."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        windows = x.reshape(x.shape[0], -1, 2)
        mask = (windows == windows.amax(-1, keepdim=True)).to(g.dtype)
        return (mask * g[..., None]).reshape(x.shape)


def _margins(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    raw = x - x[torch.arange(x.shape[0]), y][:, None] + 1
    return raw, torch.nn.functional.one_hot(y, x.shape[1]).to(x.dtype)


class MultiMarginFn(Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, y)
        raw, one_hot = _margins(x, y)
        return (torch.relu(raw) * (1 - one_hot)).sum() / x.shape[0]

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, y = ctx.saved_tensors
        raw, one_hot = _margins(x, y)
        active = (raw > 0).to(x.dtype) * (1 - one_hot)
        return g * (active - one_hot * active.sum(1, keepdim=True)) / x.shape[0], None


class MultiMarginFnKinkCountedOnce(MultiMarginFn):
    """BUG: a zero margin counts for its wrong class (>= 0) but not in the true class's sum."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, y = ctx.saved_tensors
        raw, one_hot = _margins(x, y)
        count = ((raw > 0).to(x.dtype) * (1 - one_hot)).sum(1, keepdim=True)
        return g * ((raw >= 0).to(x.dtype) * (1 - one_hot) - one_hot * count) / x.shape[0], None


class L1Fn(Function):
    @staticmethod
    def forward(ctx: Any, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(p, t)
        return (p - t).abs().mean()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, t = ctx.saved_tensors
        s = torch.sign(p - t)
        return g * s / p.numel(), -g * s / p.numel()


class L1FnTwoConventions(L1Fn):
    """BUG: p takes slope +1 at p == t, t takes sign(0) = 0: valid alone, not together."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, t = ctx.saved_tensors
        d = p - t
        return g * torch.where(d >= 0, 1.0, -1.0).to(p.dtype) / d.numel(), -g * torch.sign(d) / d.numel()


def at_the_targets(rng: np.random.Generator, dtype: Any) -> tuple[Array, Array]:
    t = rng.integers(0, 4, size=(4, 5)).astype(dtype)
    return t + 0.5 * rng.integers(-1, 2, size=(4, 5)).astype(dtype), t


def sign_slopes(d: Array) -> tuple[Array, Array]:
    return np.where(d == 0, -1.0, np.sign(d)), np.where(d == 0, 1.0, np.sign(d))


def svm_reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    raw, one_hot = _margins(x, y)
    return (torch.relu(raw) * (1 - one_hot)).sum() / x.shape[0]


def specimens() -> list[Specimen]:
    ties = inputs(integers(4, 5, low=-2, high=3), integers(4, 5, low=-2, high=3))
    found = [
        function(
            "fn_maximum_ties", cls, ties, torch.maximum, subgradient=maximum_subgradient, subgradient_inputs=2
        )
        for cls in (MaximumFn, MaximumFnBothTiesFull)
    ]
    found += [
        function(
            "fn_maxpool1d_ties",
            cls,
            inputs(integers(3, 8, low=0, high=3)),
            lambda x: torch.nn.functional.max_pool1d(x[:, None], 2, 2)[:, 0],
            subgradient=window_max_subgradient(2),
        )
        for cls in (MaxPool1dFn, MaxPool1dFnAllTiesFull)
    ]
    scores = inputs(integers(6, 5, low=-2, high=3), labels(6, classes=5))
    found += [
        function("fn_svm_hinge_int", cls, scores, svm_reference, subgradient=multiclass_hinge_subgradient)
        for cls in (MultiMarginFn, MultiMarginFnKinkCountedOnce)
    ]
    l1_truth = difference_subgradient(sign_slopes, lambda p: 1 / p.size)
    found += [
        function(
            "fn_l1_ties",
            cls,
            at_the_targets,
            lambda p, t: (p - t).abs().mean(),
            subgradient=l1_truth,
            subgradient_inputs=2,
        )
        for cls in (L1Fn, L1FnTwoConventions)
    ]
    return found
