"""The layer against a torch reference of the same math: its forward values, and its analytic
gradient against torch autograd's VJP for the same grad_output.

Two float64 implementations of one formula may round differently by far more than a few ulps
when they cancel large terms, so beyond the precision model each side's measured rounding is
allowed (the layer's backward's linearity residual, the VJP's own): the reference is an oracle
for bugs, not for ulps. A backward that is not linear in grad_output has no rounding to allow:
its residual is its bug.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .._ground.backends import dtype_name, eps, to_numpy
from .._ground.invoke import LayerCallError
from .._oracles.torch_autograd import ReferenceRun, run_reference
from .._result import Finding
from .calls import LayerCalls, Observed
from .evaluation import Evaluation
from .tolerances import ROUNDING_ULPS, precision_tolerance

REFERENCE_RTOL = 1e-10  # two float64 implementations of one formula agree to this, cancelling


def compare_with_reference(
    reference: Callable[..., Any], calls: LayerCalls, observed: Observed, evaluation: Evaluation | None
) -> list[Finding]:
    """Findings where the layer's outputs or gradients differ from the reference's."""
    if "torch" not in sys.modules:
        try:
            import torch  # noqa: F401
        except ImportError:
            return [Finding("reference", "a torch reference was given but torch is not installed")]
    try:
        run = run_reference(reference, observed.originals, observed.usable, calls.plan.params)
    except LayerCallError as exc:
        return [Finding("reference", f"reference {exc.message}", traceback=exc.traceback)]
    if len(run.outputs) != len(observed.outputs):
        return [
            Finding(
                "reference", f"reference returned {len(run.outputs)} outputs, forward {len(observed.outputs)}"
            )
        ]
    return _forward(run, observed, evaluation) + _gradients(run, calls, observed, evaluation)


def _forward(run: ReferenceRun, observed: Observed, ev: Evaluation | None) -> list[Finding]:
    mine = ev.outputs if ev is not None else observed.outputs
    forward_eps = ev.forward_eps if ev is not None else 0.0
    found = []
    for k, (ref, out, low) in enumerate(zip(run.values(), mine, observed.outputs)):
        finding = _differ(f"forward output {k}", ref, out, max(eps(low), forward_eps), None)
        if finding is not None:
            found.append(finding)
    return found


def _gradients(
    run: ReferenceRun, calls: LayerCalls, observed: Observed, ev: Evaluation | None
) -> list[Finding]:
    if ev is None or not observed.usable:
        return []
    try:
        ref_grads = run.vjp(observed.dy)
    except RuntimeError as exc:
        return [Finding("reference", f"torch autograd could not differentiate the reference: {exc}")]
    found = []
    for k, (i, ref_np) in enumerate(zip(observed.usable, ref_grads)):
        mine, name = ev.gradients[i], calls.plan.names[i]

        def floor(i: int = i, k: int = k) -> float:
            return ROUNDING_ULPS * (ev.rounding_scale(i) + run.rounding(k, ref_grads))

        finding = _differ(f"gradient for {name}", ref_np, mine, eps(mine), name, floor)
        if finding is not None:
            found.append(finding)
    return found


def _differ(
    label: str,
    reference: np.ndarray,
    mine: Any,
    epsilon: float,
    name: str | None,
    floor: Callable[[], float] | None = None,
) -> Finding | None:
    """A finding when ``mine`` differs from ``reference`` beyond rounding; ``floor`` measures the
    rounding the computation really has (asked only when the model's allowance is exceeded)."""
    ours = to_numpy(mine).astype(np.float64)
    if ours.shape != reference.shape:
        return Finding(
            "reference", f"{label} has shape {ours.shape}, the reference's {reference.shape}", input=name
        )
    reference = reference.astype(np.float64)
    peak = float(np.max(np.abs(reference))) if reference.size else 0.0
    allowed = np.maximum(precision_tolerance(epsilon, reference), REFERENCE_RTOL * (np.abs(reference) + peak))
    excess = np.abs(ours - reference) - allowed
    if floor is not None and (excess > 0).any():
        allowed = allowed + floor()
        excess = np.abs(ours - reference) - allowed
    if ours.size == 0 or not (excess > 0).any():
        return None
    k = np.unravel_index(int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess))), excess.shape)
    where = tuple(int(v) for v in k)
    return Finding(
        "reference",
        f"{label} ({dtype_name(mine)}) differs from the torch reference at {list(where)}: "
        f"{ours[k]:.8g} vs {reference[k]:.8g} (allowed ±{allowed[k]:.3g})",
        input=name,
        where=where,
        details={"ours": float(ours[k]), "reference": float(reference[k])},
    )
