"""The bundled reference layers run on torch tensors through the same array-API code (the CLI's
``--backend torch``), not only on NumPy."""

from __future__ import annotations

import pytest

import gradcheck_kit as gk
import reference_layers  # noqa: F401  (registers the layers)

NAMES = sorted(spec.name for spec in gk.registry.from_module("reference_layers"))


@pytest.mark.parametrize("name", NAMES)
def test_every_reference_layer_passes_on_torch_tensors(name):
    pytest.importorskip("torch")
    result = gk.property_check(name, backend="torch", max_examples=4, seed=0, database=False)
    assert result.passed, result.cause
