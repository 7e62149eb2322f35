"""torch.autograd.Functions as people write them, correct or with one planted bug each in what
torch's gradcheck/gradgradcheck check beyond the first-order backward. Shared by the tests of
``from_autograd_function`` and ``benchmarks/torch_functions.py``.

Every forward, backward and jvp counts its calls in ``CALLS`` (what a check costs in calls of the
user's code, whichever tool runs it).

Correct: ``Cube``, ``Linear`` (x, w, b), ``Mul`` (new style: setup_context, jvp,
generate_vmap_rule), ``SinCos`` (two outputs, set_materialize_grads(False), None handled),
``ComplexMul`` (complex z·w, grad·conj), ``PowMiddle`` (forward(ctx, x, k, w): a non-tensor in
the middle), ``DoubleInPlace`` (ctx.mark_dirty), ``OnceTanh`` (@once_differentiable).

Planted (each names the capability it breaks): ``MulJvpTwice`` (jvp 2×), ``SavedIntermediate``
(pytorch#76185's repro: double backward wrong), ``MulItem`` (backward calls .item(): breaks under
vmap), ``SinCosNoneCrash`` (backward crashes on a None grad), ``ComplexMulNoConj`` (grad·w for
grad·conj(w)), ``PowMiddleWrong`` (dw wrong, k in the middle), ``DoubleInPlaceWrong`` (mark_dirty,
backward 3 instead of 2).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.autograd.function import once_differentiable

CALLS: Counter[str] = Counter()


def _count(kind: str) -> None:
    CALLS[kind] += 1


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        _count("forward")
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        (x,) = ctx.saved_tensors
        return 3 * x**2 * grad


class Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        _count("forward")
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        x, w = ctx.saved_tensors
        return grad @ w, grad.T @ x, grad.sum(0)


class Mul(torch.autograd.Function):
    """y = x · w · x, new style: forward AD and vmap through generate_vmap_rule."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, w):
        _count("forward")
        return x * w * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        x, w = ctx.saved_tensors
        return 2 * x * w * grad, x * x * grad

    @staticmethod
    def jvp(ctx, tx, tw):
        _count("jvp")
        x, w = ctx.saved_tensors
        return 2 * x * w * tx + x * x * tw


class MulJvpTwice(Mul):
    @staticmethod
    def jvp(ctx, tx, tw):
        _count("jvp")
        x, w = ctx.saved_tensors
        return 2 * (2 * x * w * tx + x * x * tw)


class MulItem(Mul):
    """Normalizes by grad.abs().max().item(): right item by item, raises under vmap."""

    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        x, w = ctx.saved_tensors
        peak = grad.abs().max().item()
        return 2 * x * w * (grad / peak) * peak, x * x * grad


class SavedIntermediate(torch.autograd.Function):
    """pytorch#76185: an intermediate kept on ctx has no graph, so double backward is wrong."""

    @staticmethod
    def forward(ctx, inp):
        _count("forward")
        temp = inp * 2
        ctx.temp = temp
        ctx.inp = inp
        return temp * 3

    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        return grad * torch.full_like(grad, 3) * ctx.temp / ctx.inp


class ReluCube(torch.autograd.Function):
    """relu(x) + x^3: a kink at 0, where backward itself jumps (its second order is 6x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.relu(x) + x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0).to(x.dtype) + 3 * x**2)


class ReluCubeSaved(ReluCube):
    """pytorch#76185 again, at a kink: 3x^2 kept on ctx has no graph (double backward misses 6x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.square = 3 * x.detach() ** 2
        return torch.relu(x) + x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0).to(x.dtype) + ctx.square)


class SinCos(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        _count("forward")
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x)
        return x.sin(), x.cos()

    @staticmethod
    def backward(ctx, grad_sin, grad_cos):
        _count("backward")
        (x,) = ctx.saved_tensors
        grad = torch.zeros_like(x)
        if grad_sin is not None:
            grad = grad + x.cos() * grad_sin
        if grad_cos is not None:
            grad = grad - x.sin() * grad_cos
        return grad


class SinCosNoneCrash(SinCos):
    @staticmethod
    def backward(ctx, grad_sin, grad_cos):
        _count("backward")
        (x,) = ctx.saved_tensors
        return x.cos() * grad_sin - x.sin() * grad_cos


class ComplexMul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, w):
        _count("forward")
        ctx.save_for_backward(z, w)
        return z * w

    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        z, w = ctx.saved_tensors
        return grad * w.conj(), grad * z.conj()


class ComplexMulNoConj(ComplexMul):
    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        z, w = ctx.saved_tensors
        return grad * w, grad * z.conj()


class PowMiddle(torch.autograd.Function):
    """forward(ctx, x, k, w): a Python int between two tensors."""

    @staticmethod
    def forward(ctx, x, k, w):
        _count("forward")
        ctx.save_for_backward(x, w)
        ctx.k = k
        return x**k * w

    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        x, w = ctx.saved_tensors
        return grad * ctx.k * x ** (ctx.k - 1) * w, None, grad * x**ctx.k


class PowMiddleWrong(PowMiddle):
    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        x, w = ctx.saved_tensors
        return grad * ctx.k * x ** (ctx.k - 1) * w, None, grad * x ** (ctx.k - 1)


class DoubleInPlace(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        _count("forward")
        x.mul_(2)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        return grad * 2


class DoubleInPlaceWrong(DoubleInPlace):
    @staticmethod
    def backward(ctx, grad):
        _count("backward")
        return grad * 3


class OnceTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        _count("forward")
        y = x.tanh()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        _count("backward")
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


@dataclass(frozen=True)
class Specimen:
    """A Function, the inputs and params to check it at, and what is planted in it."""

    name: str
    function: type
    inputs: tuple[Any, ...]
    params: dict[str, Any] = field(default_factory=dict)
    bug: str | None = None  # the capability it breaks (None: correct)


def _real(*shape: int, seed: int, low: float | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if low is not None:
        return low + torch.rand(*shape, generator=g, dtype=torch.float64)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _complex(*shape: int, seed: int) -> torch.Tensor:
    return torch.complex(_real(*shape, seed=seed), _real(*shape, seed=seed + 100))


def specimens() -> list[Specimen]:
    """Every specimen, correct ones first."""
    x, w = _real(3, 4, seed=1), _real(3, 4, seed=2)
    lin = (_real(3, 4, seed=3), _real(2, 4, seed=4), _real(2, seed=5))
    positive, weight = _real(5, seed=6, low=0.5), _real(5, seed=7)
    z = (_complex(4, seed=8), _complex(4, seed=9))
    return [
        Specimen("cube", Cube, (_real(6, seed=0),)),
        Specimen("linear", Linear, lin),
        Specimen("mul (jvp, vmap)", Mul, (x, w)),
        Specimen("sin_cos (two outputs)", SinCos, (_real(5, seed=10),)),
        Specimen("complex_mul", ComplexMul, z),
        Specimen("pow, k in the middle", PowMiddle, (positive, weight), {"k": 3}),
        Specimen("double in place (mark_dirty)", DoubleInPlace, (_real(5, seed=11),)),
        Specimen("tanh (once_differentiable)", OnceTanh, (_real(5, seed=12),)),
        Specimen("jvp 2x wrong", MulJvpTwice, (x, w), bug="forward_mode"),
        Specimen(
            "saved intermediate (pytorch#76185)",
            SavedIntermediate,
            (_real(10, seed=13, low=0.0),),
            bug="second_order",
        ),
        Specimen("backward calls .item()", MulItem, (x, w), bug="batched"),
        Specimen("crash on a None grad", SinCosNoneCrash, (_real(5, seed=10),), bug="undefined_grad"),
        Specimen("forgotten conj", ComplexMulNoConj, z, bug="conj_missing"),
        Specimen(
            "pow, k in the middle, dw wrong", PowMiddleWrong, (positive, weight), {"k": 3}, bug="gradient"
        ),
        Specimen("mark_dirty, backward 3x", DoubleInPlaceWrong, (_real(5, seed=11),), bug="gradient"),
    ]
