"""The same layers on CuPy arrays: gk.check passes and the results equal NumPy's. Skipped, with
the reason shown, where CuPy or a CUDA GPU is missing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gradcheck_kit as gk

from .support import CHECK_EXAMPLES, float64_inputs, gk_check_property, is_float
from .test_package import REQUIRED

pytestmark = pytest.mark.gpu


def cupy_module() -> Any:
    cupy = pytest.importorskip(
        "cupy", reason="CuPy is not installed (pip install gradcheck-kit[cupy]); GPU tests skipped"
    )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        pytest.skip(
            f"CuPy is installed but CUDA is unusable ({type(exc).__name__}: {exc}); GPU tests skipped"
        )
    if count == 0:
        pytest.skip("CuPy is installed but no CUDA GPU is visible; GPU tests skipped")
    return cupy


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", REQUIRED)
def test_every_layer_passes_gk_check_on_cupy(name, dtype):
    cupy = cupy_module()
    gk_check_property(name, dtype, to=cupy.asarray, backend="cupy")


@pytest.mark.parametrize("name", REQUIRED)
def test_cupy_forward_and_backward_equal_numpys(name):
    cupy = cupy_module()
    from hypothesis import given

    spec = gk.registry.get(name)

    @CHECK_EXAMPLES
    @given(case=spec.cases)
    def run(case: gk.Case) -> None:
        host = float64_inputs(case)
        device = [cupy.asarray(a) for a in host]
        y = spec.forward(*host, **case.params)
        y_dev = spec.forward(*device, **case.params)
        assert isinstance(y_dev, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(y_dev), y, rtol=1e-12, atol=1e-12 * float(np.abs(y).max()))
        dy = np.random.default_rng(0).normal(size=np.shape(y))
        grads = spec.backward(dy, *host, **case.params)
        grads_dev = spec.backward(cupy.asarray(dy), *device, **case.params)
        for a, g, g_dev in zip(host, grads, grads_dev):
            if is_float(a):
                scale = float(np.abs(g).max(initial=0.0))
                np.testing.assert_allclose(cupy.asnumpy(g_dev), g, rtol=1e-12, atol=1e-12 * scale)

    run()
