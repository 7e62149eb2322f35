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
from . import lowprec
from .calls import LayerCalls, Observed
from .evaluation import Evaluation
from .tolerances import ROUNDING_ULPS, precision_tolerance

REFERENCE_RTOL = 1e-10  # two float64 implementations of one formula agree to this, cancelling


def compare_with_reference(
    reference: Callable[..., Any], calls: LayerCalls, observed: Observed, evaluation: Evaluation | None
) -> tuple[list[Finding], list[lowprec.LowVerdict]]:
    """Findings where the layer's outputs or gradients differ from the reference's, and the
    verdicts on float16/bfloat16 gradients (for the stages to diagnose and report)."""
    if "torch" not in sys.modules:
        try:
            import torch  # noqa: F401
        except ImportError:
            return [Finding("reference", "a torch reference was given but torch is not installed")], []
    try:
        run = run_reference(reference, observed.originals, observed.usable, calls.plan.params)
    except LayerCallError as exc:
        return [Finding("reference", f"reference {exc.message}", traceback=exc.traceback)], []
    if len(run.outputs) != len(observed.outputs):
        count = f"reference returned {len(run.outputs)} outputs, forward {len(observed.outputs)}"
        return [Finding("reference", count)], []
    found = _forward(run, observed, evaluation)
    if evaluation is None or not observed.usable:
        return found, []
    try:
        more, verdicts = _gradients(run, reference, calls, observed, evaluation)
    except RuntimeError as exc:
        failed = Finding("reference", f"torch autograd could not differentiate the reference: {exc}")
        return [*found, failed], []
    return found + more, verdicts


def _forward(run: ReferenceRun, observed: Observed, ev: Evaluation | None) -> list[Finding]:
    mine = ev.outputs if ev is not None else observed.outputs
    forward_eps = ev.forward_eps if ev is not None else 0.0
    found = []
    for k, (ref, out, low) in enumerate(zip(run.values(), mine, observed.outputs)):
        finding = _differ(f"forward output {k}", ref, out, max(eps(low), forward_eps, _grid_eps(ev)), None)
        if finding is not None:
            found.append(finding)
    return found


def _grid_eps(ev: Evaluation | None) -> float:
    """The epsilon of the coarsest grid the layer computes on (its outputs round like it)."""
    return max((eps(g) for g in ev.grid.values()), default=0.0) if ev is not None else 0.0


def _gradients(
    run: ReferenceRun, reference: Callable[..., Any], calls: LayerCalls, observed: Observed, ev: Evaluation
) -> tuple[list[Finding], list[lowprec.LowVerdict]]:
    ref_grads = run.vjp(observed.dy)
    found, low = [], {}
    for k, (i, ref_np) in enumerate(zip(observed.usable, ref_grads)):
        mine, name = ev.gradients[i], calls.plan.names[i]
        precision = lowprec.computed_in(mine, ev.grid[i])
        if lowprec.is_low(precision):
            low[i] = (to_numpy(mine).astype(np.float64), ref_np, precision)
            continue

        def floor(i: int = i, k: int = k) -> float:
            return ROUNDING_ULPS * (ev.rounding_scale(i) + run.rounding(k, ref_grads))

        finding = _differ(f"gradient for {name}", ref_np, mine, eps(mine), name, floor)
        if finding is not None:
            found.append(finding)
    return found, _low_verdicts(low, reference, calls, observed)


def _low_verdicts(
    low: dict[int, tuple[np.ndarray, np.ndarray, str]],
    reference: Callable[..., Any],
    calls: LayerCalls,
    observed: Observed,
) -> list[lowprec.LowVerdict]:
    """float16/bfloat16 gradients against the reference's float64 VJP, with the sensitivity of
    that VJP as the rounding model (the layer has no float64 run to measure it with)."""
    if not low:
        return []

    def backward(inputs: list[Any], dy: list[Any]) -> list[np.ndarray | None]:
        return list(run_reference(reference, inputs, observed.usable, calls.plan.params).vjp(dy))

    rng = np.random.default_rng([calls.plan.seed, 7])
    sensitive = lowprec.sensitivity(
        backward, observed.originals, observed.dy, observed.usable, rng, calls.backend
    )
    verdicts = []
    for i, (mine, ref, precision) in low.items():
        if i in sensitive and sensitive[i].shape == ref.shape == mine.shape:
            name = calls.plan.names[i]
            verdicts.append(
                lowprec.judge(name, precision, eps(precision), mine, ref, sensitive[i], "the torch reference")
            )
    return verdicts


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
