"""The ``second_order`` part: backward as a layer of its own, checked by ``gk.check`` itself.

    forward2(*inputs, *grad_outputs) = backward(grad_output, *inputs)   (the differentiated inputs')
    backward2(gg, *inputs, *grad_outputs) = the layer's double backward for grad_grads gg

For a torch.autograd.Function the double backward is autograd through its ``backward`` run
with ``create_graph=True``: what ``torch.autograd.grad(..., create_graph=True)`` and a Hessian
compute. Finite differences of forward2 re-run the Function (forward and backward) at moved
inputs, so a tensor that forward computed and saved on ``ctx`` outside autograd moves with them
there, while autograd treats it as a constant: the double backward misses its contribution
(pytorch#76185, #58509, #104040) and the check shows it. The whole verdict machinery applies to
the pair (kinks, the error model, float32 handling, diagnosis): it is an ordinary check.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._adapters.autograd import NO_GRAPH, ONCE
from .._ground.draws import signed_magnitudes
from .._ground.invoke import LayerCallError, call, gradients_of
from .._result import FAILED, PASSED, SKIPPED, CheckPart, CheckResult
from ..errors import CheckTimeout
from .context import FIRST_ORDER_FAILED, Context, offered

NAME = "second_order"
LEAVES_AUTOGRAD = "numpy() on Tensor that requires grad"  # a backward computing in NumPy
INTERMEDIATES = (
    "often a tensor computed in forward and kept on ctx (ctx.foo = ..., or save_for_backward of an "
    "intermediate) that the backward uses: autograd sees it as a constant, so double backward misses "
    "its dependence on the inputs; recompute it in backward from saved inputs, or return it as an output"
)

RESIDUALS = (
    "often a residual that fwd computes under jax.lax.stop_gradient or outside JAX (NumPy, "
    "pure_callback): JAX differentiates the rules through it as a constant"
)


@dataclass
class SecondOrder:
    """The second-order layer, ready for ``gk.check``: its pair, inputs and check options."""

    forward: Callable[..., Any]
    backward: Callable[..., Any]
    inputs: list[Any]
    options: dict[str, Any]
    origin: str
    started: float


def layer(context: Context) -> SecondOrder | CheckPart | None:
    """The layer to check, a skipped or failed part saying why there is none, or None where the
    layer has no second order to speak of (order=1, or no double backward)."""
    plan, extras = context.plan, context.plan.extras
    if (
        plan.order == 1
        or extras is None
        or (extras.double_backward is None and not extras.not_twice_differentiable)
        or (plan.order is None and not extras.second_order_by_default)
    ):
        return None
    if extras.double_backward is None:
        return _unavailable(context, str(extras.not_twice_differentiable))
    if not context.first_order_passed:
        return CheckPart(NAME, SKIPPED, FIRST_ORDER_FAILED)
    started = time.perf_counter()
    unavailable = _probe(context)
    if unavailable is not None:
        return unavailable
    return _build(context, started)


def _unavailable(context: Context, why: str) -> CheckPart:
    if context.plan.order == 2:
        return CheckPart(NAME, FAILED, "second order asked for (order=2)", cause=f"cannot be checked: {why}")
    return CheckPart(NAME, SKIPPED, f"not checked: {why}")


def _probe(context: Context) -> CheckPart | None:
    """One double backward at the check's point: a once_differentiable error deeper in backward
    or a backward computed outside autograd mean there is no second order to check; any other
    error is the finding."""
    calls, observed, plan = context.calls, context.observed, context.plan
    rng = np.random.default_rng([plan.seed, 21])
    grad_grads = [
        calls.backend.astype(calls.backend.from_numpy(signed_magnitudes(rng, tuple(x.shape))), x.dtype)
        if k in observed.usable else None
        for k, x in enumerate(observed.originals)
    ]  # fmt: skip
    args = [grad_grads, _grad_output(calls.copies(observed.dy)), *calls.copies(observed.originals)]
    try:
        call(offered(context, "double_backward"), args, plan.params, "double_backward", calls.counter)
    except LayerCallError as exc:
        if ONCE in exc.message:
            return _unavailable(context, "backward calls a @once_differentiable function")
        if NO_GRAPH in exc.message or LEAVES_AUTOGRAD in exc.message:
            return _unavailable(
                context,
                f"{NO_GRAPH}: computed outside autograd (NumPy, an extension) or detached; mark backward "
                "@once_differentiable to say so",
            )
        return CheckPart(
            NAME, FAILED, "double backward at the check's point", cause=f"double backward {exc.message}"
        )
    return None


def _grad_output(dy: list[Any]) -> Any:
    return dy[0] if len(dy) == 1 else tuple(dy)


def _build(context: Context, started: float) -> SecondOrder:
    plan, observed, calls = context.plan, context.observed, context.calls
    n, usable = len(plan.inputs), list(observed.usable)
    slots = [k for k, d in enumerate(observed.dy) if d is not None]  # outputs with a grad_output
    dy_names = ["grad_output"] if len(observed.dy) == 1 else [f"grad_output{k}" for k in slots]

    def split(args: tuple[Any, ...]) -> tuple[list[Any], Any]:
        dy: list[Any] = [None] * len(observed.dy)
        for k, d in zip(slots, args[n:]):
            dy[k] = d
        return list(args[:n]), _grad_output(dy)

    def forward2(*args: Any, **params: Any) -> Any:
        inputs, dy = split(args)
        grads = gradients_of(plan.backward(dy, *inputs, **params), n)
        return tuple(grads[i] for i in usable)

    double_backward = offered(context, "double_backward")

    def backward2(gg: Any, *args: Any, **params: Any) -> Any:
        inputs, dy = split(args)
        given = gg if isinstance(gg, tuple) else (gg,)
        grad_grads: list[Any] = [None] * n
        for i, g in zip(usable, given):
            grad_grads[i] = g
        d_inputs, d_dy = double_backward(grad_grads, dy, *inputs, **params)
        d_dy = d_dy if isinstance(d_dy, (tuple, list)) else (d_dy,)
        return (*d_inputs, *(d_dy[k] for k in slots))

    names = [*plan.names, *dy_names]
    _sign(forward2, names, f"{plan.name} (second order)")
    _sign(backward2, ["grad_grads", *names], f"{plan.name} (double backward)")
    inputs = [*calls.copies(observed.originals), *(calls.copies(observed.dy)[k] for k in slots)]
    options = {
        "wrt": [*plan.diff, *range(n, n + len(slots))],
        "seed": plan.seed,
        "rtol": plan.rtol,
        "atol": plan.atol,
        "mode": plan.mode,
        "name": f"{plan.name} (second order)",
        "allow_aliasing": True,  # a gradient that is grad_output itself (an identity) is fine here
        "order": 1,
    }
    origin = plan.extras.origin if plan.extras is not None else "layer"
    return SecondOrder(forward2, backward2, inputs, options, origin, started)


def _sign(fn: Callable[..., Any], names: list[str], label: str) -> None:
    P = inspect.Parameter
    params = [P(name, P.POSITIONAL_OR_KEYWORD) for name in names]
    fn.__signature__ = inspect.Signature([*params, P("params", P.VAR_KEYWORD)])  # type: ignore[attr-defined]
    fn.__qualname__ = fn.__name__ = label


def _in_these_terms(report: Any) -> str:
    """The nested check's diagnosis in second-order words: its "forward" is backward."""
    names = [p["name"] for p in report.evidence.get("patterns", [])]
    if "forward_ignores_input" in names:
        return (
            f"backward does not change when {report.name} moves (its finite differences are 0) while "
            "double backward says it does"
        )
    return f"backward checked as a layer: {report.cause or 'gradient mismatch'}"


def part(second: SecondOrder, nested: CheckResult, context: Context) -> CheckPart:
    """The nested check as the ``second_order`` part, its calls added to the layer's own count
    (forward2 calls are backward calls, backward2 ones double backward calls)."""
    timed_out = nested.finding("timeout")
    if timed_out is not None:
        raise CheckTimeout(timed_out.message)
    counter = context.calls.counter
    counter["backward"] += nested.calls.get("forward", 0)
    counter["double_backward"] += nested.calls.get("backward", 0)
    calls = {
        "backward": nested.calls.get("forward", 0),
        "double_backward": nested.calls.get("backward", 0) + 1,
    }
    names = ", ".join(r.name for r in nested.inputs)
    modes = sorted({r.mode for r in nested.inputs})
    how = "autograd through backward" if second.origin.startswith("torch") else "double_backward="
    how = "jax.vjp through the rules" if second.origin.startswith(("jax.", "JAX")) else how
    what = (
        f"double backward ({how}) w.r.t. {names} against finite differences of backward ({', '.join(modes)})"
    )
    seconds = time.perf_counter() - second.started
    if nested.passed:
        return CheckPart(NAME, PASSED, what, calls=calls, seconds=seconds, result=nested)
    wrong = [r for r in nested.inputs if not r.passed]
    if wrong:  # the nested check's words: its "forward" is backward, as a function of (inputs, grad_output)
        cause = f"double backward w.r.t. {wrong[0].name} is wrong ({_in_these_terms(wrong[0])})"
    else:
        cause = f"backward checked as a layer: {nested.cause}"
    if wrong and second.origin.startswith("torch.autograd.Function"):
        cause += f"; {INTERMEDIATES}"
    elif wrong and second.origin.startswith("jax.custom_vjp"):
        cause += f"; {RESIDUALS}"
    return CheckPart(NAME, FAILED, what, cause=cause, calls=calls, seconds=seconds, result=nested)
