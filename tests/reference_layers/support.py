"""Shared by the reference-layer tests: the torch oracle at 1e-10 and gk.check over strategies."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import gradcheck_kit as gk
import reference_layers  # noqa: F401 - registers every layer

RTOL = 1e-10  # the bar: float64 forward and backward against torch, relative

requires_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="torch is not installed (pip install gradcheck-kit[torch])",
)

# hypothesis settings for the torch comparisons and for the gk.check runs
TORCH_EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# gk.check runs are derandomized: a fixed set of examples per layer and dtype, so a rare engine
# false alarm (see test_gk_check_false_alarms.py) cannot make the suite flaky
CHECK_EXAMPLES = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def is_float(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def float64_inputs(case: gk.Case) -> tuple[Any, ...]:
    return tuple(a.astype(np.float64) if is_float(a) else a for a in case.inputs)


def assert_close(ours: Any, theirs: Any, what: str) -> None:
    """Equal to RTOL of each element, or of the tensor's largest element where a value is a
    cancellation of larger terms (so 0 vs 1e-17 is not a failure)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch {theirs.shape}"
    assert ours.dtype == np.float64, f"{what}: dtype {ours.dtype} for float64 inputs"
    scale = float(np.max(np.abs(theirs), initial=0.0))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def assert_matches_torch(name: str, case: gk.Case) -> None:
    """Forward vs the registered torch reference and backward vs torch autograd, in float64."""
    torch = pytest.importorskip("torch")
    spec = gk.registry.get(name)
    inputs = float64_inputs(case)
    tensors = [torch.tensor(a, requires_grad=is_float(a)) for a in inputs]
    expected = spec.reference(*tensors, **case.params)
    y = spec.forward(*inputs, **case.params)
    assert_close(y, expected.detach().numpy(), f"{name} forward, {case.describe(spec.input_names)}")
    dy = np.asarray(np.random.default_rng(case.meta.get("seed", 0)).normal(size=np.shape(y)))
    grads = spec.backward(dy, *inputs, **case.params)
    wanted = [t for t in tensors if t.requires_grad]
    autograd = iter(torch.autograd.grad(expected, wanted, torch.tensor(dy)))
    assert len(grads) == len(inputs), f"{name}: {len(grads)} gradients for {len(inputs)} inputs"
    for label, a, g in zip(spec.input_names, inputs, grads):
        if not is_float(a):
            assert g is None, f"{name}: d{label} must be None for a non-differentiated input"
            continue
        assert_close(g, next(autograd).numpy(), f"{name} d{label}, {case.describe(spec.input_names)}")


def torch_property(name: str) -> Any:
    """A hypothesis test body: every drawn case of ``name`` matches torch."""

    @TORCH_EXAMPLES
    @given(case=gk.registry.get(name).cases)
    def run(case: gk.Case) -> None:
        assert_matches_torch(name, case)

    return run


def check_passes(name: str, case: gk.Case, **options: Any) -> None:
    result = gk.check_case(gk.registry.get(name), case, **options)
    assert result.passed, str(result)


def gk_check_property(
    name: str, dtype: str, *, to: Callable[[np.ndarray], Any] | None = None, **options: Any
) -> None:
    """gk.check passes on drawn NumPy cases of ``name`` whose inputs are ``dtype`` (moved to
    another library's arrays by ``to``); the torch reference runs too unless ``reference=None``
    is passed (and torch must be there for it)."""
    spec = gk.registry.get(name)
    if importlib.util.find_spec("torch") is None:
        options["reference"] = None

    @CHECK_EXAMPLES
    @given(case=spec.cases.filter(lambda c: c.inputs[0].dtype == np.dtype(dtype)))
    def run(case: gk.Case) -> None:
        if to is not None:
            case = gk.Case(tuple(to(a) for a in case.inputs), case.params, meta=case.meta)
        check_passes(name, case, **options)

    run()
