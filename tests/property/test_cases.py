"""What property testing draws: layer cases cast to the dtypes asked for, on the backend asked for."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find

import gradcheck_kit as gk
from gradcheck_kit._property.cases import layer_cases

X = np.linspace(-1.0, 1.0, 6).reshape(2, 3)


@pytest.fixture
def spec():
    return gk.LayerSpec("cast_me", np.tanh, lambda dy, x: (dy,), cases=[gk.Case((X, np.arange(3)))])


def test_bfloat16_cases_reach_a_torch_layer_as_bfloat16_tensors_and_integers_stay_as_they_are(spec):
    torch = pytest.importorskip("torch")
    case = find(layer_cases(spec, backend="torch", dtypes=("bfloat16",)), lambda c: True)

    x, index = case.inputs
    assert x.dtype == torch.bfloat16 and torch.equal(x, torch.as_tensor(X).to(torch.bfloat16))
    assert index.dtype == torch.int64
    assert case.meta["dtype"] == "bfloat16"


def test_bfloat16_on_numpy_is_refused_naming_the_backend_that_has_it(spec):
    with pytest.raises(
        gk.InvalidArgument, match="numpy has no bfloat16; bfloat16 cases are checked on --backend torch"
    ):
        layer_cases(spec, backend="numpy", dtypes=("float32", "bfloat16"))


def test_an_unknown_dtype_is_refused_naming_what_is_accepted(spec):
    with pytest.raises(gk.InvalidArgument, match="float64, float32, float16, bfloat16"):
        layer_cases(spec, dtypes=("float8",))
