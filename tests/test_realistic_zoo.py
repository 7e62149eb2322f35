"""Smoke test of the realistic zoo (tests/support/realistic): the catalogue builds, every
specimen's forward runs and its backward returns one gradient per input with the input's shape.
No verdicts here: benchmarks/verdicts.py --battery realistic measures those."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gradcheck_kit as gk
from tests.support.realistic import mytorch
from tests.support.realistic.specimens import RealSpecimen, Trial, run, specimens

SPECIMENS = specimens()
STYLES = {"cache", "class", "functional", "degenerate"}


def forward_and_backward(trial: Trial) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(inputs, gradients) of one call with grad_output = ones, without gk's adapters: a class
    layer's gradients are read from the attributes its weights map names (dotted paths)."""
    if trial.layer is None:
        out = trial.forward(*trial.inputs, **trial.params)
        grads = trial.backward(np.ones_like(np.asarray(out)), *trial.inputs, **trial.params)
        return trial.inputs, tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
    out = trial.layer.forward(*trial.inputs, **trial.params)
    d_input = trial.layer.backward(np.ones_like(out))
    weights = mytorch.weight_arrays(trial.layer, list(trial.weights))
    grads = mytorch.weight_arrays(trial.layer, list(trial.weights.values()))
    return (*trial.inputs, *weights), (d_input, *grads)


def test_the_catalogue_holds_enough_correct_and_buggy_specimens_with_unique_names():
    names = [s.name for s in SPECIMENS]
    assert len(names) == len(set(names))
    assert sum(not s.buggy for s in SPECIMENS) >= 45 and sum(s.buggy for s in SPECIMENS) >= 35
    assert {s.style for s in SPECIMENS} == STYLES
    assert all(bool(s.bug) is s.buggy and s.dtypes for s in SPECIMENS)
    assert all(s.expect is None for s in SPECIMENS if not s.buggy)


@pytest.mark.parametrize("specimen", SPECIMENS, ids=lambda s: s.name)
def test_every_specimen_runs_forward_and_backward_with_one_gradient_per_input(specimen: RealSpecimen):
    inputs, grads = forward_and_backward(specimen.trial(specimen.dtypes[0], seed=0))
    assert len(grads) == len(inputs)
    for x, g in zip(inputs, grads):
        if np.asarray(x).dtype.kind != "f":
            continue  # labels, token ids: not differentiated
        if specimen.expect != "shape":  # the planted shape bugs return the wrong shape on purpose
            assert np.shape(g) == np.shape(x), specimen.name


@pytest.mark.parametrize("style", sorted(STYLES))
def test_run_returns_a_check_result_for_every_style(style: str):
    specimen = next(s for s in SPECIMENS if s.style == style)
    result = run(specimen, dtype=specimen.dtypes[0], seed=0, mode="projection")
    assert isinstance(result, gk.CheckResult) and isinstance(result.passed, bool)
