"""A layer's own backend: a ``torch.autograd.Function`` and cases of torch tensors run on torch,
a layer registered with ``backend=`` there, any other layer wherever it is asked to run; a torch
layer asked to run on NumPy is told so, naming the layer, its backend and what is accepted."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

import gradcheck_kit as gk
from gradcheck_kit._property.cases import backend_mismatch, native_backend
from gradcheck_kit.registry import EXTRAS_ATTRIBUTE
from tests.support.torch_sources import cube_function

X = np.linspace(-1.0, 1.0, 4)


def _tanh(**options: object) -> gk.LayerSpec:
    return gk.register("tanh", np.tanh, lambda dy, x: (dy,), into=gk.Registry(), **options)


def test_a_numpy_layer_has_no_backend_of_its_own_and_runs_anywhere():
    spec = _tanh(cases=[gk.Case((X,))])
    assert spec.native_backend is None and native_backend(spec) is None
    assert backend_mismatch(spec, "numpy") is None and backend_mismatch(spec, "torch") is None


def test_a_layer_registered_with_a_backend_runs_there_and_an_unknown_one_is_refused():
    assert _tanh(backend="torch").native_backend == "torch"
    with pytest.raises(gk.RegistrationError, match=r"layer 'tanh'.*backend='mlx' is unknown; accepted:"):
        _tanh(backend="mlx")


def test_a_torch_function_and_torch_cases_run_on_torch_and_numpy_is_a_mismatch_with_the_reason():
    torch = pytest.importorskip("torch")
    Cube = cube_function()

    pair = gk.from_autograd_function(Cube)
    assert getattr(pair.forward, EXTRAS_ATTRIBUTE).native_backend == "torch"
    from gradcheck_kit._adapters.extras import EXTRAS_ATTRIBUTE as ADAPTERS_ATTRIBUTE

    assert ADAPTERS_ATTRIBUTE == EXTRAS_ATTRIBUTE  # the registry's copy of the adapters' name
    function = gk.register(
        "cube", *pair, cases=[gk.Case((torch.ones(3, dtype=torch.float64),))], into=gk.Registry()
    )
    drawn = _tanh(cases=st.just(gk.Case((torch.ones(3),))))
    assert function.native_backend == "torch" and native_backend(function) == "torch"
    assert drawn.native_backend is None and native_backend(drawn) == "torch"  # drawn from the strategy
    assert backend_mismatch(function, "torch") is None and backend_mismatch(function, "torch:cuda") is None
    reason = backend_mismatch(function, "numpy")
    assert reason.startswith("layer 'cube' runs on torch (a torch.autograd.Function), not on backend 'numpy'")
    assert reason.endswith("accepted: --backend torch (or no --backend: each layer's own)")
    assert "its cases hold torch tensors" in backend_mismatch(drawn, "cupy")
