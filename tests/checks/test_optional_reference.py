"""A registered layer's torch reference is optional: without torch, ``check_case`` checks the
layer without it and says so in a warning, instead of failing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import gradcheck_kit as gk


def _tanh_spec(reference: object) -> gk.LayerSpec:
    return gk.register(
        "tanh_with_reference",
        forward=np.tanh,
        backward=lambda dy, x: (dy * (1 - np.tanh(x) ** 2),),
        reference=reference,
        into=gk.Registry(),
    )


def _torch_tanh(x):
    import torch

    return torch.tanh(x)


CASE = gk.Case((np.linspace(-1.0, 1.0, 5),))


def test_a_layer_whose_reference_needs_a_missing_torch_passes_with_a_warning_saying_it_was_skipped(
    monkeypatch,
):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    result = gk.check_case(_tanh_spec(_torch_tanh), CASE)
    assert result.passed, str(result)
    (finding,) = [f for f in result.findings if f.kind == "reference"]
    assert (finding.severity, finding.message) == ("warning", "reference skipped: torch is not installed")
    assert result.settings["reference"] is False and "reference skipped" in str(result)


def test_a_reference_turned_off_by_the_caller_is_not_reported_as_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = gk.check_case(_tanh_spec(_torch_tanh), CASE, reference=None)
    assert result.passed and not [f for f in result.findings if f.kind == "reference"]


def test_with_torch_installed_the_registered_reference_is_compared():
    pytest.importorskip("torch", reason="torch is not installed")
    result = gk.check_case(_tanh_spec(_torch_tanh), CASE)
    assert result.passed and result.settings["reference"] is True
    assert not [f for f in result.findings if f.kind == "reference"]
