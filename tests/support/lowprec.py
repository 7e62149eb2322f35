"""Low-precision kernels written the way kernel authors write them, correct or with one planted bug.

Every kernel is a ``(forward, backward)`` pair on torch tensors in gk.check's convention
(``forward(*inputs, **params)``, ``backward(grad_output, *inputs, **params)`` returning one
gradient per input). The math of each kind is written once, dtype-generic, with a hand-derived
backward; a *variant* says in which precision it runs:

- ``low``: torch ops in the inputs' own dtype (bfloat16/float16 all the way through);
- ``upcast``: ``x.float()``, compute, ``.to(x.dtype)`` back (float32 accumulation inside);
- ``upcast-bwd``: the forward in the inputs' dtype (plain torch ops), only the backward kernel
  upcasts to float32 inside;
- ``bf16-only``: the upcast kernel behind a guard that raises TypeError for anything but
  bfloat16 (a Triton kernel compiled for one dtype); check it with ``reference=``;
- ``f32-in``: takes float32 inputs, rounds them to the low dtype inside, computes there and
  returns float32 (``.float()``, whatever it was given; the ``dtype`` of a trial is then the
  compute dtype).

Bugs are planted in the math, so they run in the kernel's compute dtype: a wrong constant
(×1.02, ×1.05, ×1.1), a missing term, one quarter of a gradient with the wrong sign, a
transposed operand. ``specimens()`` is the catalogue, ``by_name`` picks one;
``LowSpecimen.build(seed, dtype)`` gives ``(forward, backward, inputs, params)`` and
``LowSpecimen.exact(seed, dtype)`` the same math (bug included) in float64 on the same values,
without the variant's casts. ``reference`` is the plain torch math for ``gk.check(reference=)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

LOW = ("bfloat16", "float16")
VARIANTS = ("low", "upcast", "upcast-bwd", "bf16-only", "f32-in")
Tensors = tuple[torch.Tensor, ...]
Fn = Callable[..., Any]
Built = tuple[Fn, Fn, Tensors, dict[str, Any]]
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_C = 0.044715


def torch_dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype), name
    return dtype


# -- matmul: y = a b ------------------------------------------------------------------------------


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b


def matmul_backward(dy: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> Tensors:
    # da = dy bᵀ, db = aᵀ dy
    return dy @ b.T, a.T @ dy


def matmul_backward_transposed(dy: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> Tensors:
    # the bug: da = dy b (b not transposed; the shapes only fit because b is square)
    return dy @ b, a.T @ dy


# -- layer norm over the last axis: y = x̂ w + b, x̂ = (x − μ) · rstd ------------------------------


def _normalized(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    # μ = mean(x), rstd = 1 / sqrt(mean((x − μ)²) + eps), over the last axis
    xc = x - x.mean(-1, keepdim=True)
    rstd = torch.rsqrt((xc * xc).mean(-1, keepdim=True) + eps)
    return xc * rstd, rstd


def layernorm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, eps: float) -> torch.Tensor:
    xhat, _ = _normalized(x, eps)
    return xhat * w + b


def _rows(t: torch.Tensor) -> torch.Tensor:
    # the sum over every axis but the last (the rows a weight of the last axis is shared by)
    return t.reshape(-1, t.shape[-1]).sum(0)


def layernorm_backward(dy: torch.Tensor, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, eps: float):
    # with g = dy·w: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), dw = Σ_rows dy·x̂, db = Σ_rows dy
    xhat, rstd = _normalized(x, eps)
    g = dy * w
    dx = rstd * (g - g.mean(-1, keepdim=True) - xhat * (g * xhat).mean(-1, keepdim=True))
    return dx, _rows(dy * xhat), _rows(dy)


def layernorm_backward_no_mean(dy, x, w, b, *, eps: float):
    # the bug: dx = rstd·(g − x̂·mean(g·x̂)), the mean(g) = mean(dy·w) term forgotten
    xhat, rstd = _normalized(x, eps)
    g = dy * w
    dx = rstd * (g - xhat * (g * xhat).mean(-1, keepdim=True))
    return dx, _rows(dy * xhat), _rows(dy)


def layernorm_reference(x, w, b, *, eps: float):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


# -- softmax over the last axis: y = exp(x − max) / Σ exp(x − max) ---------------------------------


def softmax(x: torch.Tensor) -> torch.Tensor:
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def softmax_backward(dy: torch.Tensor, x: torch.Tensor) -> Tensors:
    # dx = y·(dy − Σ dy·y)
    y = softmax(x)
    return (y * (dy - (dy * y).sum(-1, keepdim=True)),)


def softmax_backward_no_subtraction(dy: torch.Tensor, x: torch.Tensor) -> Tensors:
    # the bug: dx = y·dy, the subtraction of Σ dy·y forgotten
    return (softmax(x) * dy,)


def softmax_reference(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, -1)


# -- GELU (tanh approximation): y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³) ----------------------


def gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)))


def gelu_backward(dy: torch.Tensor, x: torch.Tensor) -> Tensors:
    # dy/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²), t = tanh u
    t = torch.tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x))
    du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x)
    return (dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du),)


# -- SiLU: y = x·σ(x) -------------------------------------------------------------------------------


def silu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def silu_backward(dy: torch.Tensor, x: torch.Tensor) -> Tensors:
    # dy/dx = σ(x)·(1 + x·(1 − σ(x)))
    s = torch.sigmoid(x)
    return (dy * s * (1.0 + x * (1.0 - s)),)


# -- attention, one head: o = softmax(q kᵀ / √d) v over batches (B, L, d) ----------------------------


def _probabilities(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return _probabilities(q, k) @ v


def attention_backward(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Tensors:
    # FlashAttention's backward: dv = pᵀ do, dp = do vᵀ, D = rowsum(do·o), ds = p·(dp − D),
    # dq = ds k / √d, dk = dsᵀ q / √d
    p = _probabilities(q, k)
    o = p @ v
    big_d = (do * o).sum(-1, keepdim=True)
    ds = p * (do @ v.transpose(-1, -2) - big_d) / math.sqrt(q.shape[-1])
    return ds @ k, ds.transpose(-1, -2) @ q, p.transpose(-1, -2) @ do


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v


# -- conv2d: y = conv2d(x, w) + b -----------------------------------------------------------------


def conv2d(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, stride: int, padding: int) -> torch.Tensor:
    return F.conv2d(x, w, b, stride=stride, padding=padding)


def conv2d_backward(dy, x, w, b, *, stride: int, padding: int) -> Tensors:
    # dx = conv_transpose(dy, w), dw = correlation of x with dy, db = Σ_{n,h,w} dy
    dx = torch.nn.grad.conv2d_input(x.shape, w, dy, stride=stride, padding=padding)
    dw = torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=stride, padding=padding)
    return dx, dw, dy.sum((0, 2, 3))


# -- planted bugs on a backward, in its compute dtype -----------------------------------------------


def scaled(backward: Fn, factor: float, which: int) -> Fn:
    """Gradient ``which`` times ``factor``: a wrong constant in the kernel."""

    def wrong(*args: Any, **params: Any) -> Tensors:
        grads = list(backward(*args, **params))
        grads[which] = grads[which] * factor
        return tuple(grads)

    return wrong


def quarter_negated(backward: Fn, which: int) -> Fn:
    """The first quarter of gradient ``which``'s elements (row-major) with the wrong sign: one
    tile of four written with a flipped sign."""

    def wrong(*args: Any, **params: Any) -> Tensors:
        grads = list(backward(*args, **params))
        flat = grads[which].reshape(-1).clone()
        flat[: flat.numel() // 4] *= -1
        grads[which] = flat.reshape(grads[which].shape)
        return tuple(grads)

    return wrong


# -- variants: in which precision the math runs ----------------------------------------------------


def _cast(out: Any, dtype: torch.dtype) -> Any:
    if isinstance(out, torch.Tensor):
        return out.to(dtype)
    return tuple(_cast(o, dtype) for o in out)


def _first(args: Sequence[Any]) -> torch.Tensor:
    return next(a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point())


def low(fn: Fn, compute: torch.dtype) -> Fn:
    """Torch ops in the inputs' own dtype."""
    return fn


def upcast(fn: Fn, compute: torch.dtype) -> Fn:
    """``x.float()``, compute in float32, ``.to(x.dtype)`` back."""

    def kernel(*args: Any, **params: Any) -> Any:
        dtype = _first(args).dtype
        return _cast(fn(*(a.float() for a in args), **params), dtype)

    return kernel


def bf16_only(fn: Fn, compute: torch.dtype) -> Fn:
    """The upcast kernel compiled for bfloat16 only: any other dtype is a TypeError."""
    inner = upcast(fn, compute)

    def kernel(*args: Any, **params: Any) -> Any:
        wrong = {str(a.dtype) for a in args if a.dtype != torch.bfloat16}
        if wrong:
            raise TypeError(f"this kernel supports torch.bfloat16 only, got {sorted(wrong)}")
        return inner(*args, **params)

    return kernel


def f32_in(fn: Fn, compute: torch.dtype) -> Fn:
    """Float32 in and out, ``compute`` (bfloat16/float16) inside: x.to(compute), ..., .float()."""

    def kernel(*args: Any, **params: Any) -> Any:
        return _cast(fn(*(a.to(compute) for a in args), **params), torch.float32)

    return kernel


Wrap = Callable[[Fn, torch.dtype], Fn]
WRAP: dict[str, tuple[Wrap, Wrap]] = {  # variant -> (the forward's wrapper, the backward's)
    "low": (low, low),
    "upcast": (upcast, upcast),
    "upcast-bwd": (low, upcast),
    "bf16-only": (bf16_only, bf16_only),
    "f32-in": (f32_in, f32_in),
}


# -- inputs at realistic scales -------------------------------------------------------------------


def _normal(g: torch.Generator, *shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale + shift


def _matmul_inputs(g: torch.Generator) -> Tensors:
    # activations N(0, 1), weights N(0, 1/fan_in); b square so that the transposed bug runs
    return _normal(g, 64, 64), _normal(g, 64, 64, scale=64**-0.5)


def _layernorm_inputs(g: torch.Generator) -> Tensors:
    # activations with an offset and spread, so the normalization matters; w ≈ 1, b ≈ 0
    return (
        _normal(g, 32, 128, scale=2.0, shift=0.5),
        _normal(g, 128, scale=0.1, shift=1.0),
        _normal(g, 128, scale=0.1),
    )


def _softmax_inputs(g: torch.Generator) -> Tensors:
    return (_normal(g, 32, 128, scale=2.0),)  # logits a few units wide


def _pointwise_inputs(g: torch.Generator) -> Tensors:
    return (_normal(g, 64, 256, scale=2.0),)


def _attention_inputs(g: torch.Generator) -> Tensors:
    return _normal(g, 2, 64, 32), _normal(g, 2, 64, 32), _normal(g, 2, 64, 32)


def _conv2d_inputs(g: torch.Generator) -> Tensors:
    # x (N=2, C=8, 16×16), w (F=16, C=8, 3×3) ~ N(0, 1/fan_in), a small bias
    return _normal(g, 2, 8, 16, 16), _normal(g, 16, 8, 3, 3, scale=72**-0.5), _normal(g, 16, scale=0.1)


@dataclass(frozen=True)
class Math:
    """One kind of math: forward, hand-written backward, plain torch reference, inputs, params,
    the gradient a constant-factor bug scales and the one a sign bug flips."""

    name: str
    forward: Fn
    backward: Fn
    reference: Fn
    make: Callable[[torch.Generator], Tensors]
    params: dict[str, Any] = field(default_factory=dict)
    scaled: int = 0
    flipped: int = 0


MATHS = {
    m.name: m
    for m in (
        Math("matmul", matmul, matmul_backward, matmul, _matmul_inputs, flipped=1),
        Math(
            "layernorm",
            layernorm,
            layernorm_backward,
            layernorm_reference,
            _layernorm_inputs,
            {"eps": 1e-5},
            flipped=1,
        ),
        Math("softmax", softmax, softmax_backward, softmax_reference, _softmax_inputs),
        Math("gelu", gelu, gelu_backward, gelu, _pointwise_inputs),
        Math("silu", silu, silu_backward, silu, _pointwise_inputs),
        Math("attention", attention, attention_backward, attention_reference, _attention_inputs, flipped=2),
        Math(
            "conv2d", conv2d, conv2d_backward, conv2d, _conv2d_inputs, {"stride": 1, "padding": 1}, flipped=1
        ),
    )
}


# -- the catalogue ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LowSpecimen:
    name: str
    math: str
    variant: str  # one of VARIANTS
    buggy: bool
    bug: str | None  # one line: what is wrong (None when correct)
    dtypes: tuple[str, ...]  # the low dtypes it runs in (for f32-in: computes in)
    backward_math: Fn  # the math's backward with the bug planted, dtype-generic
    reference: Fn

    @property
    def tag(self) -> str | None:
        """The planted bug's tag in the name (``x1.05``, ``signflip``, ``no-mean-term``, ...)."""
        return self.name.removeprefix(f"{self.math}-{self.variant}-") if self.buggy else None

    def build(self, rng_seed: int, dtype: str) -> Built:
        """``(forward, backward, inputs, params)``: the kernel in ``dtype`` on seeded inputs."""
        m, compute = MATHS[self.math], torch_dtype(dtype)
        wrap_forward, wrap_backward = WRAP[self.variant]
        held = torch.float32 if self.variant == "f32-in" else compute
        inputs = tuple(t.to(held) for t in m.make(torch.Generator().manual_seed(rng_seed)))
        forward, backward = wrap_forward(m.forward, compute), wrap_backward(self.backward_math, compute)
        return forward, backward, inputs, dict(m.params)

    def exact(self, rng_seed: int, dtype: str) -> Built:
        """The same math, bug included, in float64 on the values ``build`` gives the kernel."""
        m = MATHS[self.math]
        _, _, inputs, params = self.build(rng_seed, dtype)
        return m.forward, self.backward_math, tuple(t.double() for t in inputs), params


def _dtypes(variant: str) -> tuple[str, ...]:
    return ("bfloat16",) if variant == "bf16-only" else LOW


def ok(math_name: str, variant: str) -> LowSpecimen:
    m = MATHS[math_name]
    name = f"{math_name}-{variant}"
    return LowSpecimen(name, math_name, variant, False, None, _dtypes(variant), m.backward, m.reference)


def bug(
    math_name: str, variant: str, tag: str, what: str, backward: Fn, dtypes: Sequence[str] | None = None
) -> LowSpecimen:
    m = MATHS[math_name]
    chosen = tuple(dtypes) if dtypes is not None else _dtypes(variant)
    return LowSpecimen(
        f"{math_name}-{variant}-{tag}", math_name, variant, True, what, chosen, backward, m.reference
    )


def scale_bug(math_name: str, variant: str, factor: float, dtypes: Sequence[str]) -> LowSpecimen:
    m = MATHS[math_name]
    what = f"gradient {m.scaled} times {factor}"
    return bug(math_name, variant, f"x{factor}", what, scaled(m.backward, factor, m.scaled), dtypes)


def sign_bug(math_name: str, variant: str) -> LowSpecimen:
    m = MATHS[math_name]
    what = f"the first quarter of gradient {m.flipped}'s elements negated"
    return bug(math_name, variant, "signflip", what, quarter_negated(m.backward, m.flipped))


def specimens() -> list[LowSpecimen]:
    found = [ok(m, v) for m in MATHS for v in VARIANTS]
    for m in MATHS:  # every planted size on the float32-accumulating kernel of every math
        found += [scale_bug(m, "upcast", 1.05, LOW), scale_bug(m, "upcast", 1.1, ("bfloat16",))]
        found += [scale_bug(m, "upcast", 1.02, ("float16",)), sign_bug(m, "upcast")]
    found += _term_bugs() + _bugs_in_other_variants()
    names = [s.name for s in found]
    assert len(names) == len(set(names)), "specimen names must be unique"
    return found


def _term_bugs() -> list[LowSpecimen]:
    return [
        bug(
            "layernorm", "upcast", "no-mean-term", "dx lacks the −mean(dy·w) term", layernorm_backward_no_mean
        ),
        bug(
            "softmax",
            "upcast",
            "no-subtraction",
            "dx = y·dy: Σ dy·y not subtracted",
            softmax_backward_no_subtraction,
        ),
        bug(
            "matmul",
            "upcast",
            "transposed",
            "da = dy b instead of dy bᵀ (b square)",
            matmul_backward_transposed,
        ),
    ]


def _bugs_in_other_variants() -> list[LowSpecimen]:
    return [
        scale_bug("softmax", "low", 1.05, LOW),
        scale_bug("conv2d", "low", 1.02, ("float16",)),
        scale_bug("matmul", "bf16-only", 1.05, ("bfloat16",)),
        scale_bug("attention", "bf16-only", 1.1, ("bfloat16",)),
        sign_bug("layernorm", "bf16-only"),
        scale_bug("gelu", "f32-in", 1.05, LOW),
        scale_bug("gelu", "upcast-bwd", 1.05, LOW),
        scale_bug("attention", "upcast-bwd", 1.02, ("float16",)),
        bug(
            "layernorm", "f32-in", "no-mean-term", "dx lacks the −mean(dy·w) term", layernorm_backward_no_mean
        ),
    ]


def by_name(name: str) -> LowSpecimen:
    return next(s for s in specimens() if s.name == name)
