"""The package: every layer of issue 3 registered with a torch reference and valid cases;
importing it needs neither torch nor CuPy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import find

import gradcheck_kit as gk
import reference_layers

REQUIRED = [
    "avgpool2d",
    "batch_norm",
    "conv1d",
    "conv1d_untied",
    "conv2d",
    "conv2d_untied",
    "gaussian_filter1d",
    "gaussian_filter1d_unscaled",
    "layer_norm",
    "leaky_relu",
    "linear",
    "linear_sigmoid",
    "maxpool2d",
    "relu",
    "sigmoid",
    "softmax_cross_entropy",
    "tanh",
]


def test_importing_the_package_registers_every_layer_with_a_reference_and_cases():
    specs = gk.registry.from_module("reference_layers")
    assert sorted(s.name for s in specs) == REQUIRED
    for spec in specs:
        assert spec.reference is not None and spec.cases is not None and spec.description, spec.name


def test_the_package_exports_every_forward_and_backward_it_lists():
    for name in reference_layers.__all__:
        assert callable(getattr(reference_layers, name)), name


def test_importing_the_package_needs_neither_torch_nor_cupy():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['cupy'] = None; "
        "import reference_layers, gradcheck_kit as gk; print(len(gk.registry))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= len(REQUIRED)


@pytest.mark.parametrize("name", REQUIRED)
def test_every_strategy_draws_float32_and_non_contiguous_inputs(name):
    cases = gk.registry.get(name).cases
    find(cases, lambda c: c.inputs[0].dtype == np.float32)
    find(cases, lambda c: not c.inputs[0].flags.c_contiguous and c.inputs[0].size > 1)
