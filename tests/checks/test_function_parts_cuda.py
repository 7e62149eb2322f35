"""The same Functions on CUDA tensors: correct ones pass every part, planted bugs fail; cuDNN's
nondeterministic convolution backward (which torch's default gradcheck fails as "not
reentrant") passes. Skipped, with the reason shown, where torch has no CUDA device."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import gradcheck_kit as gk  # noqa: E402
from tests.support.functions import Specimen, specimens  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: GPU tests skipped"),
]


@pytest.mark.parametrize("specimen", specimens(), ids=lambda s: s.name)
def test_every_function_gets_the_same_verdict_on_cuda(specimen: Specimen):
    inputs = tuple(t.to("cuda") for t in specimen.inputs)
    result = gk.check(*gk.from_autograd_function(specimen.function), inputs, specimen.params)
    assert result.backend.startswith("torch:cuda")
    assert result.passed == (specimen.bug is None), str(result)


class CudnnConv(torch.autograd.Function):
    """conv2d with cuDNN's own backward kernels, whose weight gradient sums with atomics."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return torch.nn.functional.conv2d(x, w, padding=1)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        dx = torch.nn.grad.conv2d_input(x.shape, w, grad, padding=1)
        dw = torch.nn.grad.conv2d_weight(x, w.shape, grad, padding=1)
        return dx, dw


def test_cudnns_nondeterministic_conv_backward_passes_its_determinism_contract(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    generator = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(8, 16, 32, 32, device="cuda", generator=generator)
    w = torch.randn(32, 16, 3, 3, device="cuda", generator=generator)
    result = gk.check(*gk.from_autograd_function(CudnnConv), (x, w), order=1)
    assert result.passed, str(result)
    assert result.finding("determinism") is None
