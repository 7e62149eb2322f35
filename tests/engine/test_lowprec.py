"""float16/bfloat16 gradients judged as tightly as their rounding allows: against the layer's own
float64 gradient or a torch reference's, under a measured rounding model, element-wise, in
aggregate and for a bias; kernels that upcast to float32 inside, or compute in bfloat16 inside,
are judged at the precision they really have."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk

torch = pytest.importorskip("torch")

LOW = (torch.bfloat16, torch.float16)


def matmul(a, b):
    return a @ b


def matmul_backward(scale=1.0, *, only_low=True, transposed=False, quarter_flipped=False):
    """dA = dY B^T, dB = A^T dY; the planted bug applies to the low-precision path only (a
    "fast path" for half precision), so the layer's float64 run is right."""

    def backward(dy, a, b):
        da, db = dy @ b.T, a.T @ dy
        if a.dtype in LOW or not only_low:
            da = (dy @ b if transposed else da) * scale
            if quarter_flipped:
                da = da.clone()
                da[: da.shape[0] // 4] *= -1
        return da, db

    return backward


def matmul_upcast(dy, a, b):
    """The kernel author's way: compute in float32, cast back (float64 inputs go down to float32)."""
    return (dy.float() @ b.float().T).to(a.dtype), (a.float().T @ dy.float()).to(a.dtype)


def gelu(x):
    return 0.5 * x * (1 + torch.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def gelu_upcast(dy, x):
    xf = x.float()
    t = torch.tanh(0.7978845608 * (xf + 0.044715 * xf**3))
    slope = 0.5 * (1 + t) + 0.5 * xf * (1 - t**2) * 0.7978845608 * (1 + 3 * 0.044715 * xf**2)
    return ((dy.float() * slope).to(x.dtype),)


def layer_norm(x):
    return torch.nn.functional.layer_norm(x, x.shape[-1:])


def layer_norm_backward(*, mean_term=True):
    def backward(dy, x):
        xf, dyf = x.float(), dy.float()
        mu, var = xf.mean(-1, keepdim=True), xf.var(-1, unbiased=False, keepdim=True)
        inv = (var + 1e-5).rsqrt()
        xhat = (xf - mu) * inv
        dx = dyf - xhat * (dyf * xhat).mean(-1, keepdim=True)
        if mean_term or x.dtype not in LOW:
            dx = dx - dyf.mean(-1, keepdim=True)
        return ((dx * inv).to(x.dtype),)

    return backward


def only_bf16(fn):
    def wrapped(*args):
        if any(isinstance(a, torch.Tensor) and a.dtype != torch.bfloat16 for a in args):
            raise TypeError("this kernel takes bfloat16 only")
        return fn(*args)

    return wrapped


def inputs(dtype, seed=0, square=False):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(32, 64, generator=g)
    b = torch.randn(64, 64 if square else 48, generator=g) / 8
    return a.to(dtype), b.to(dtype)


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("backward", [matmul_backward(), matmul_upcast], ids=["direct", "upcast"])
def test_correct_half_precision_kernels_pass_direct_or_upcast_with_and_without_a_reference(dtype, backward):
    # (one seed in float16: its CPU matmul is emulated, ~100x bfloat16's; the battery runs more)
    for seed in range(2 if dtype == torch.bfloat16 else 1):
        for reference in (None, matmul):
            result = gk.check(matmul, backward, inputs(dtype, seed), reference=reference, seed=seed)
            assert result.passed, str(result)


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [(torch.bfloat16, 1.05), (torch.bfloat16, 1.1), (torch.float16, 1.02), (torch.float16, 1.05)],
)
def test_a_scaled_half_precision_gradient_is_caught_and_named(dtype, scale):
    result = gk.check(matmul, matmul_backward(scale), inputs(dtype))
    finding = result.finding("precision")
    assert not result.passed and finding is not None and finding.input == "a", str(result)
    assert "rounding of a correct implementation" in finding.message or "a bias of" in finding.message


def test_a_bias_of_two_percent_too_small_for_any_element_alone_fails_in_aggregate():
    g = torch.Generator().manual_seed(5)
    a, b = (
        torch.randn(64, 64, generator=g).to(torch.bfloat16),
        (torch.randn(64, 48, generator=g) / 8).to(torch.bfloat16),
    )
    result = gk.check(matmul, matmul_backward(1.02), (a, b))
    finding = result.finding("precision")
    assert finding is not None and finding.details["failing"] == 0, str(result)
    assert "a bias of +2.0" in finding.message


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_a_transposed_backward_and_a_sign_flipped_quarter_are_caught_and_located(dtype):
    transposed = gk.check(matmul, matmul_backward(transposed=True), inputs(dtype, square=True))
    assert not transposed.passed and transposed.finding("precision").input == "a"
    flipped = gk.check(matmul, matmul_backward(quarter_flipped=True), inputs(dtype))
    assert "only in rows [0, 1, 2, 3, 4, 5, 6, 7]" in flipped.finding("precision").message


def test_the_error_is_said_in_multiples_of_what_rounding_explains_with_the_worst_element():
    message = gk.check(matmul, matmul_backward(1.1), inputs(torch.bfloat16)).finding("precision").message
    assert "what bfloat16 rounding of a correct implementation explains" in message
    assert "worst at [" in message and "likely cause: gradient off by a constant factor" in message


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_a_layer_norm_missing_its_mean_term_in_half_precision_is_caught(dtype):
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(3)).to(dtype)
    assert gk.check(layer_norm, layer_norm_backward(), (x,)).passed
    result = gk.check(layer_norm, layer_norm_backward(mean_term=False), (x,))
    assert not result.passed and result.finding("precision") is not None, str(result)


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_a_backward_upcasting_to_float32_inside_is_judged_at_float32_not_float64(dtype):
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(1)).to(dtype)
    result = gk.check(gelu, gelu_upcast, (x,))
    assert result.passed, str(result)
    assert result.settings["backward_precision"] == {"x": "float32"}


def test_a_bfloat16_only_kernel_is_judged_tightly_against_a_reference():
    a, b = inputs(torch.bfloat16, square=True)
    good = gk.check(only_bf16(matmul), only_bf16(matmul_backward()), (a, b), reference=matmul)
    assert good.passed, str(good)
    for backward in (matmul_backward(1.05), matmul_backward(transposed=True)):
        result = gk.check(only_bf16(matmul), only_bf16(backward), (a, b), reference=matmul)
        assert "the torch reference" in result.finding("precision").message, str(result)


def _computes_in_bfloat16(fn):
    """float32 in, bfloat16 inside, float32 out."""

    def wrapped(*args):
        out = fn(*[a.to(torch.bfloat16) if isinstance(a, torch.Tensor) else a for a in args])
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

    return wrapped


def test_a_float32_kernel_computing_in_bfloat16_inside_is_no_false_alarm_and_says_what_it_needs():
    a, b = inputs(torch.float32)
    forward, backward = _computes_in_bfloat16(matmul), _computes_in_bfloat16(matmul_backward(only_low=False))
    alone = gk.check(forward, backward, (a, b))
    assert alone.passed and set(alone.settings["grid"].values()) == {"bfloat16"}, str(alone)
    assert "give reference=" in alone.finding("precision").message and not alone.finding("precision").is_error
    assert gk.check(forward, backward, (a, b), reference=matmul).passed
    buggy = _computes_in_bfloat16(matmul_backward(1.05, only_low=False))
    assert not gk.check(forward, buggy, (a, b), reference=matmul).passed


def test_numpy_float16_layers_are_judged_against_their_float64_run():
    rng = np.random.default_rng(0)
    x, w = (
        rng.standard_normal((32, 40)).astype(np.float16),
        (rng.standard_normal((40, 24)) / 6).astype(np.float16),
    )

    def backward(scale):
        def grads(dy, x, w):
            factor = scale if x.dtype == np.float16 else 1.0
            return (dy @ w.T) * np.asarray(factor, x.dtype), x.T @ dy

        return grads

    assert gk.check(lambda x, w: x @ w, backward(1.0), (x, w)).passed
    assert gk.check(lambda x, w: x @ w, backward(1.02), (x, w)).finding("precision") is not None


def test_a_backward_that_returns_bfloat16_even_from_float64_inputs_is_warned_about():
    x = torch.linspace(-2, 2, 20, dtype=torch.float64).reshape(4, 5).to(torch.bfloat16)
    result = gk.check(torch.tanh, lambda dy, x: ((dy * (1 - torch.tanh(x) ** 2)).to(torch.bfloat16),), (x,))
    assert result.passed, str(result)
    assert any(
        "backward returns bfloat16 for x even from float64 inputs" in f.message for f in result.findings
    )
    in_dtype = gk.check(torch.tanh, lambda dy, x: ((dy * (1 - torch.tanh(x) ** 2)).to(x.dtype),), (x,))
    assert not any("even from float64" in f.message for f in in_dtype.findings)


class _GeluFloat32Out(torch.autograd.Function):
    """A bfloat16/float16 kernel that computes in float32 and always answers float32 (float32
    activations out, a common kernel convention); its backward returns the input's dtype."""

    factor = 1.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.nn.functional.gelu(x.float(), approximate="tanh")

    @classmethod
    def backward(cls, ctx, dy):
        (x,) = ctx.saved_tensors
        xf = x.float().requires_grad_(True)
        with torch.enable_grad():
            (slope,) = torch.autograd.grad(torch.nn.functional.gelu(xf, approximate="tanh").sum(), xf)
        return (cls.factor * dy.float() * slope).to(x.dtype)


class _GeluFloat32OutTimes105(_GeluFloat32Out):
    factor = 1.05


@pytest.mark.parametrize("dtype", LOW)
def test_a_kernel_answering_float32_from_low_precision_inputs_is_judged_through_its_float32_run(dtype):
    x = (torch.randn(16, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.5).to(dtype)
    assert gk.check(*gk.from_autograd_function(_GeluFloat32Out), (x,), order=1).passed
    wrong = gk.check(*gk.from_autograd_function(_GeluFloat32OutTimes105), (x,), order=1)
    assert not wrong.passed and "1.05" in wrong.cause
