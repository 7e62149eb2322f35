"""Smoke test of the low-precision zoo (tests/support/lowprec.py), no gradcheck-kit verdicts:
every kernel runs forward and backward in its dtypes with the right shapes and dtypes; a correct
kernel's gradient is torch autograd's float64 gradient of the same math up to low-precision
rounding; a buggy one is its planted wrong gradient (checked exactly in float64) up to the same
rounding. benchmarks/low_precision.py measures the verdicts."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from tests.support.lowprec import (  # noqa: E402  (after the skip: the zoo needs torch)
    LOW,
    MATHS,
    VARIANTS,
    LowSpecimen,
    Tensors,
    specimens,
    torch_dtype,
)

SPECIMENS = specimens()
CASES = [(s, dtype) for s in SPECIMENS for dtype in s.dtypes]
EPS = {"bfloat16": 2.0**-7, "float16": 2.0**-10}
# ulps of the largest gradient: the worst measured over seeds 0-2 is 7.5, a layer-norm row whose
# cancellation costs plain torch ops in the same dtype as much
ROUNDING = 8.0


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Kernels of 10^3-10^5 elements: torch's intra-op threads cost 50x more than they save on a
    shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ids(case: tuple[LowSpecimen, str]) -> str:
    return f"{case[0].name}-{case[1]}"


def grad_output(out: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)


def autograd(fn, inputs: Tensors, params: dict, dy: torch.Tensor) -> Tensors:
    xs = [t.detach().double().requires_grad_() for t in inputs]
    return torch.autograd.grad(fn(*xs, **params), xs, dy.double())


def worst(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| relative to max |b|."""
    return ((a.double() - b).abs().max() / b.abs().max()).item()


def run(specimen: LowSpecimen, dtype: str):
    """(inputs, params, dy, the kernel's gradients, float64 autograd's, the exact planted math's)."""
    forward, backward, inputs, params = specimen.build(0, dtype)
    dy = grad_output(forward(*inputs, **params))
    grads = backward(dy, *inputs, **params)
    truth = autograd(specimen.reference, inputs, params, dy)
    _, exact_backward, inputs64, _ = specimen.exact(0, dtype)
    return inputs, params, dy, grads, truth, exact_backward(dy.double(), *inputs64, **params)


def test_the_catalogue_has_every_math_in_every_variant_and_every_planted_bug():
    names = [s.name for s in SPECIMENS]
    assert len(names) == len(set(names))
    assert {(s.math, s.variant) for s in SPECIMENS if not s.buggy} == {
        (m, v) for m in MATHS for v in VARIANTS
    }
    tags = {(s.tag, d) for s in SPECIMENS if s.buggy for d in s.dtypes}
    for wanted in [("x1.05", "bfloat16"), ("x1.1", "bfloat16"), ("x1.02", "float16"), ("x1.05", "float16")]:
        assert wanted in tags
    assert {"signflip", "no-mean-term", "no-subtraction", "transposed"} <= {t for t, _ in tags}
    assert all(bool(s.bug) is s.buggy and set(s.dtypes) <= set(LOW) for s in SPECIMENS)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_forward_and_backward_run_with_the_shapes_and_dtypes_of_the_inputs(case):
    specimen, dtype = case
    forward, backward, inputs, params = specimen.build(0, dtype)
    held = torch.float32 if specimen.variant == "f32-in" else torch_dtype(dtype)
    assert all(t.dtype == held and 10**3 <= t.numel() <= 10**5 for t in inputs if t.dim() > 1)
    out = forward(*inputs, **params)
    assert out.dtype == held and torch.isfinite(out).all()
    grads = backward(grad_output(out), *inputs, **params)
    assert len(grads) == len(inputs)
    assert [(g.shape, g.dtype) for g in grads] == [(t.shape, t.dtype) for t in inputs]


@pytest.mark.parametrize("specimen", [s for s in SPECIMENS if s.variant == "bf16-only"], ids=lambda s: s.name)
def test_bf16_only_kernels_reject_every_other_dtype(specimen: LowSpecimen):
    forward, backward, inputs, params = specimen.build(0, "bfloat16")
    for dtype in (torch.float32, torch.float64, torch.float16):
        cast = tuple(t.to(dtype) for t in inputs)
        with pytest.raises(TypeError):
            forward(*cast, **params)
        with pytest.raises(TypeError):
            backward(torch.ones_like(forward(*inputs, **params)).to(dtype), *cast, **params)


@pytest.mark.parametrize("case", [c for c in CASES if not c[0].buggy], ids=ids)
def test_a_correct_kernel_is_float64_autograd_of_its_math_up_to_rounding(case):
    specimen, dtype = case
    _, _, _, grads, truth, exact = run(specimen, dtype)
    for g, t, e in zip(grads, truth, exact):
        assert worst(e, t) < 1e-12  # the hand-written backward is the math's exact gradient
        assert worst(g, t) < ROUNDING * EPS[dtype]


def planted(
    specimen: LowSpecimen, inputs: Tensors, params: dict, dy: torch.Tensor, truth: Tensors
) -> Tensors:
    """The wrong gradient each bug should give, from float64 autograd's right one."""
    m, tag, grads = MATHS[specimen.math], specimen.tag, list(truth)
    x = [t.double() for t in inputs]
    if tag is not None and tag.startswith("x"):
        grads[m.scaled] = grads[m.scaled] * float(tag[1:])
    elif tag == "signflip":
        flat = grads[m.flipped].reshape(-1).clone()
        flat[: flat.numel() // 4] *= -1
        grads[m.flipped] = flat.reshape(grads[m.flipped].shape)
    elif tag == "no-mean-term":  # dx + rstd·mean(dy·w)
        rstd = torch.rsqrt(x[0].var(-1, unbiased=False, keepdim=True) + params["eps"])
        grads[0] = grads[0] + rstd * (dy.double() * x[1]).mean(-1, keepdim=True)
    elif tag == "no-subtraction":  # dx + y·Σ dy·y
        y = torch.softmax(x[0], -1)
        grads[0] = grads[0] + y * (dy.double() * y).sum(-1, keepdim=True)
    elif tag == "transposed":  # dy b for dy bᵀ
        grads[0] = dy.double() @ x[1]
    return tuple(grads)


@pytest.mark.parametrize("case", [c for c in CASES if c[0].buggy], ids=ids)
def test_a_buggy_kernel_is_its_planted_wrong_gradient_up_to_rounding(case):
    specimen, dtype = case
    inputs, params, dy, grads, truth, exact = run(specimen, dtype)
    wanted = planted(specimen, inputs, params, dy, truth)
    moved = [worst(w, t) for w, t in zip(wanted, truth)]
    assert max(moved) > 0.015  # the bug changes a gradient by 1.5% of its peak or more
    for g, w, e in zip(grads, wanted, exact):
        assert worst(e, w) < 1e-12  # the planted math is exactly the wrong gradient named
        assert worst(g, w) < ROUNDING * EPS[dtype]


@pytest.mark.parametrize("case", [c for c in CASES if (c[0].tag or "").startswith("x")], ids=ids)
def test_a_scaled_gradient_fits_its_factor_in_aggregate(case):
    specimen, dtype = case
    _, _, _, grads, truth, _ = run(specimen, dtype)
    i, factor = MATHS[specimen.math].scaled, float(specimen.tag[1:])
    g, t = grads[i].double(), truth[i]
    fit = ((g * t).sum() / (t * t).sum()).item()  # least-squares c in g ≈ c·t
    assert math.isclose(fit, factor, abs_tol=0.1 * (factor - 1.0))
