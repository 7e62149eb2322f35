"""NumPy and torch run the same code path; CuPy too where a GPU exists."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk
from gradcheck_kit._ground import backends
from tests.support.zoo import by_name


def test_same_values_treats_nan_as_equal_and_finds_the_first_difference():
    a = np.array([1.0, np.nan, 3.0])
    assert backends.same_values(a, a.copy())
    b = a.copy()
    b[2] = 4.0
    assert not backends.same_values(a, b) and backends.first_difference(a, b) == (2,)


def test_same_values_tells_a_changed_nan_and_a_changed_integer_apart():
    a = np.array([1.0, np.nan])
    assert not backends.same_values(a, np.array([np.nan, 1.0]))
    assert not backends.same_values(np.arange(3), np.array([0, 1, 3]))
    assert backends.same_values(np.arange(3), np.arange(3))


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_dot_sums_the_product_over_every_element_of_any_layout(library):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((5, 4, 3)).T  # b not contiguous
    expected = float(np.sum(a * b))
    if library == "torch":
        torch = pytest.importorskip("torch")
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        mixed = float(backends.backend_of([a]).dot(a, b.to(torch.float32)))
        assert mixed == pytest.approx(expected, rel=1e-6)
    backend = backends.backend_of([a])
    assert backend.dot(a, b) == pytest.approx(expected, rel=1e-12)
    assert backend.dot(a[0, 0, 0], b[0, 0, 0]) == pytest.approx(float(a[0, 0, 0] * b[0, 0, 0]))


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_sum_abs_sums_magnitudes_of_arrays_and_scalars(library):
    values = np.array([[-1.5, 2.0], [0.25, -4.0]])
    if library == "torch":
        torch = pytest.importorskip("torch")
        values = torch.as_tensor(values)
    backend = backends.backend_of([values])
    assert backend.sum_abs(values * 1.0) == 7.75
    assert backend.sum_abs(values[1, 1] * 1.0) == 4.0  # NumPy: a scalar, not an array


def test_shares_memory_sees_views_but_not_copies():
    x = np.arange(6.0).reshape(2, 3)
    assert backends.shares_memory(x, x.T) and not backends.shares_memory(x, x.copy())


def test_torch_tensors_get_the_same_verdicts_as_numpy():
    torch = pytest.importorskip("torch")

    def forward(x, w):
        return torch.tanh(x @ w)

    def backward(dy, x, w):
        dz = dy * (1 - torch.tanh(x @ w) ** 2)
        return dz @ w.T, x.T @ dz

    def wrong(dy, x, w):
        dz = dy * (1 - torch.tanh(x @ w) ** 2)
        return dz @ w.T, x.T @ dz * 0.5

    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float64, torch.float32):
        x, w = torch.randn(5, 4, generator=g, dtype=dtype), torch.randn(4, 3, generator=g, dtype=dtype)
        ok = gk.check(forward, backward, (x, w))
        assert ok.passed and ok.backend == "torch", str(ok)
        bad = gk.check(forward, wrong, (x, w))
        assert [r.name for r in bad.inputs if not r.passed] == ["w"]


def test_torch_inputs_that_require_grad_are_handled_and_left_alone():
    torch = pytest.importorskip("torch")
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    result = gk.check(torch.sin, lambda dy, x: (dy * torch.cos(x),), (x,))
    assert result.passed and x.grad is None


@pytest.mark.gpu
def test_cupy_arrays_are_checked_on_the_gpu():
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        pytest.skip(f"CuPy is installed but no CUDA device is usable: {exc}")
    s = by_name("conv2d")
    inputs = tuple(cupy.asarray(a) for a in s.inputs())

    def forward(x, w, b, **params):
        return cupy.asarray(s.forward(x.get(), w.get(), b.get(), **params))

    def backward(dy, x, w, b, **params):
        return tuple(cupy.asarray(g) for g in s.backward(dy.get(), x.get(), w.get(), b.get(), **params))

    result = gk.check(forward, backward, inputs, s.params)
    assert result.passed and result.backend.startswith("cupy")
