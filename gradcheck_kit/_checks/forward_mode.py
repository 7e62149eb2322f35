"""The ``forward_mode`` part: a layer's JVP (a torch.autograd.Function's ``jvp``, or
``gk.check(..., jvp=...)``) along random tangents, against finite differences and against the
checked backward by the dot-product test <u, J v> = <Jᵀu, v> (``_engine.tangents``).

Tangents are the projection check's balanced random directions (zeros and ties left out: they
sit on kinks), at the point finite differences run from (float64 copies where the layer accepts
them). Three JVP calls judge both tests (the third measures the JVP's rounding); a failure
spends one more per input to say whose tangent is wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._engine.directions import joint_direction, special_elements
from .._engine.evaluation import Evaluation, build_setup
from .._engine.setup import Setup
from .._engine.tangents import (
    Pairing,
    dot_tolerance,
    judge_tangent,
    linearity_residual,
    pair_inputs,
    pair_outputs,
)
from .._ground.backends import is_array
from .._ground.formatting import num
from .._ground.invoke import LayerCallError, call
from .._result import FAILED, PASSED, CheckPart
from .context import Context, offered, skipped

NAME = "forward_mode"
DIRECTIONS = 2  # random tangents: a wrong JVP passes one only if <u, error> is ~0 along it


def applies(context: Context) -> bool:
    return context.plan.extras is not None and context.plan.extras.jvp is not None


def part(context: Context) -> CheckPart:
    ev = context.evaluation
    if ev is None or not ev.usable:
        return skipped(NAME, "not checked: no gradient was compared")
    setup = build_setup(ev)
    specials = {i: special_elements(setup.host_values[i], exhaustive=False) for i in ev.usable}
    directions = [joint_direction(setup, ev.usable, specials) for _ in range(DIRECTIONS)]
    both = {i: directions[0][i] + directions[1][i] for i in ev.usable}
    try:
        outputs = [_jvp(context, ev, d) for d in (*directions, both)]
    except LayerCallError as exc:
        return CheckPart(NAME, FAILED, _what(context), cause=f"jvp {exc.message}")
    return _verdict(context, ev, setup, directions, outputs)


def _what(context: Context) -> str:
    names = ", ".join(context.plan.names[i] for i in context.observed.usable)
    return f"jvp along {DIRECTIONS} random tangents over {names}, against finite differences and backward"


def _jvp(context: Context, ev: Evaluation, direction: dict[int, Any]) -> list[Any]:
    """The output tangents for ``direction`` (one per output), at the evaluation point."""
    b, plan = context.calls.backend, context.plan
    # inputs differentiated but not moved get zero tangents, the others (labels) none
    tangents = [
        b.astype(direction[i], ev.base[i].dtype) if i in direction
        else b.xp.zeros_like(ev.base[i]) if i in ev.usable else None
        for i in range(len(ev.base))
    ]  # fmt: skip
    args = [tangents, *context.calls.copies(ev.base)]
    value = call(offered(context, "jvp"), args, plan.params, "jvp", context.calls.counter)
    outs = list(value) if isinstance(value, (tuple, list)) else [value]
    if len(outs) != len(ev.outputs):
        raise LayerCallError("jvp", f"returned {len(outs)} tangents for {len(ev.outputs)} outputs")
    for k, (t, y) in enumerate(zip(outs, ev.outputs)):
        if t is not None and (not is_array(t) or tuple(t.shape) != tuple(y.shape)):
            shape = tuple(t.shape) if is_array(t) else type(t).__name__
            raise LayerCallError("jvp", f"returned {shape} for output {k} of shape {tuple(y.shape)}")
    return outs


def _verdict(
    context: Context, ev: Evaluation, setup: Setup, directions: list[dict[int, Any]], outputs: list[list[Any]]
) -> CheckPart:
    b, u = setup.backend, setup.objective.dy
    jvps = [pair_outputs(b, u, t) for t in outputs[:DIRECTIONS]]
    vjps = [pair_inputs(setup, d) for d in directions]
    jvp_rounding = linearity_residual(b, u, outputs)
    n = sum(setup.host_values[i].size for i in ev.usable)
    tolerances = [
        dot_tolerance(j, v, jvp_rounding, _vjp_rounding(ev, d, b), n)
        for j, v, d in zip(jvps, vjps, directions)
    ]
    judged = [judge_tangent(setup, d, j.value) for d, j in zip(directions, jvps)]
    numeric = [float(v.numeric[0]) for v in judged]
    dot_ok = [abs(j.value - v.value) <= t for j, v, t in zip(jvps, vjps, tolerances)]
    fd_ok = [bool(v.passed.all()) for v in judged]
    details = {
        "jvp": [j.value for j in jvps],
        "backward": [v.value for v in vjps],
        "numeric": numeric,
        "dot_tolerance": tolerances,
        "finite_differences_passed": fd_ok,
    }
    if all(dot_ok) and all(fd_ok):
        worst = max(abs(j.value - v.value) / max(abs(v.value), 1e-300) for j, v in zip(jvps, vjps))
        message = f"{_what(context)}: agrees (dot-product test to {num(worst)} relative)"
        return CheckPart(NAME, PASSED, message, details=details)
    cause = _cause(jvps, vjps, numeric, fd_ok) + _whose(context, ev, setup, directions[0], jvp_rounding)
    return CheckPart(NAME, FAILED, _what(context), cause=cause, details=details)


def _vjp_rounding(ev: Evaluation, direction: dict[int, Any], b: Any) -> float:
    """Σ_i (backward's measured rounding for input i) · |v_i|_1."""
    return sum(ev.rounding_scale(i) * b.scalar(b.xp.sum(b.xp.abs(d))) for i, d in direction.items())


def _cause(jvps: list[Pairing], vjps: list[Pairing], numeric: list[float], fd_ok: list[bool]) -> str:
    ratios = [j.value / v.value if v.value else float("inf") for j, v in zip(jvps, vjps)]
    if not all(fd_ok):
        rates = ", ".join(f"{num(j.value, 7)} vs {num(x, 7)}" for j, x in zip(jvps, numeric))
        start = f"jvp disagrees with finite differences along random tangents (<u, J v>: {rates})"
    else:
        start = "jvp and backward disagree beyond rounding, within finite-difference resolution"
    if _constant(ratios):
        return f"{start}: the jvp is {ratios[0]:.6g}× what backward gives along every tangent"
    if all(fd_ok):
        pairs = ", ".join(f"{num(j.value, 7)} vs {num(v.value, 7)}" for j, v in zip(jvps, vjps))
        return f"{start} (<u, J v> vs <Jᵀu, v>: {pairs})"
    return start


def _constant(ratios: list[float]) -> bool:
    finite = [r for r in ratios if np.isfinite(r)]
    return (
        len(finite) == len(ratios) > 1
        and abs(finite[0] - 1) > 1e-6
        and np.ptp(finite) <= 1e-6 * abs(finite[0])
    )


def _whose(context: Context, ev: Evaluation, setup: Setup, direction: dict[int, Any], rounding: float) -> str:
    """Which inputs' tangents the JVP gets wrong: the dot-product test per input (one more
    JVP call each), where there are several inputs."""
    if len(direction) < 2:
        return ""
    wrong = []
    for i in direction:
        alone = {i: direction[i]}
        try:
            tangent = _jvp(context, ev, alone)
        except LayerCallError:
            return ""
        jvp, vjp = pair_outputs(setup.backend, setup.objective.dy, tangent), pair_inputs(setup, alone)
        allowed = dot_tolerance(
            jvp, vjp, rounding, _vjp_rounding(ev, alone, setup.backend), setup.host_values[i].size
        )
        if abs(jvp.value - vjp.value) > allowed:
            ratio = f" ({jvp.value / vjp.value:.6g}× what backward gives)" if vjp.value else ""
            wrong.append(f"{context.plan.names[i]}{ratio}")
    return f"; wrong along the tangent of {', '.join(wrong)}" if wrong else ""
