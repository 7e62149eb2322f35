"""Complex inputs and outputs in torch's convention (grad_z = grad · conj(∂y/∂z)), checked
through their real view: right gradients pass in NumPy and torch, in complex128 and complex64,
element-wise and by projection; a forgotten conj is named ``conj_missing``."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk

rng = np.random.default_rng(0)


def complex_values(*shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def mul(z, w):
    return z * w


def mul_backward(grad, z, w):
    return grad * np.conj(w), grad * np.conj(z)


def mul_backward_no_conj(grad, z, w):
    return grad * w, grad * np.conj(z)


def mul_backward_conjugated(grad, z, w):
    return np.conj(grad * np.conj(w)), grad * np.conj(z)


Z, W = complex_values(3, 2), complex_values(3, 2)


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
def test_a_numpy_complex_product_passes_in_torchs_convention(mode):
    result = gk.check(mul, mul_backward, (Z, W), mode=mode)
    assert result.passed, str(result)
    assert [r.dtype for r in result.inputs] == ["complex128", "complex128"]


@pytest.mark.parametrize(
    "backward", [mul_backward_no_conj, mul_backward_conjugated], ids=["grad*w", "conj(grad*conj(w))"]
)
@pytest.mark.parametrize("mode", ["elementwise", "projection"])
def test_a_forgotten_conj_is_named_conj_missing(backward, mode):
    result = gk.check(mul, backward, (Z, W), mode=mode)
    assert [r.name for r in result.inputs if not r.passed] == ["z"]
    assert result.patterns == ["conj_missing"], str(result)
    assert "conj missing" in result.cause


def test_a_real_input_with_complex_outputs_is_checked_through_their_real_view():
    def fft(x):
        return np.fft.fft(x)

    def fft_backward(grad, x):  # the adjoint of the DFT, real part: Re(n · ifft(grad))
        return (np.real(np.fft.ifft(grad)) * x.size,)

    x = rng.normal(size=6)
    assert gk.check(fft, fft_backward, (x,)).passed
    wrong = gk.check(fft, lambda grad, x: (np.imag(np.fft.ifft(grad)) * x.size,), (x,))
    assert not wrong.passed


def test_a_real_gradient_for_a_complex_input_is_an_exception_saying_why():
    result = gk.check(mul, lambda grad, z, w: (np.real(grad * np.conj(w)), grad * np.conj(z)), (Z, W))
    assert "a complex input's gradient is complex" in result.cause


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_torch_complex_functions_follow_the_same_convention(dtype):
    torch = pytest.importorskip("torch")
    from tests.support import functions as fz

    z, w = (torch.tensor(v).to(getattr(torch, dtype)) for v in (Z, W))
    assert gk.check(*gk.from_autograd_function(fz.ComplexMul), (z, w), order=1).passed
    wrong = gk.check(*gk.from_autograd_function(fz.ComplexMulNoConj), (z, w))
    assert wrong.patterns == ["conj_missing"], str(wrong)
