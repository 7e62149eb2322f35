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

import dataclasses
import inspect
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._adapters.autograd import NO_GRAPH, ONCE
from .._engine.directions import special_elements
from .._engine.tolerances import input_scale
from .._ground.backends import dtype_name, to_numpy
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

# Where the layer sits on a kink or a tie (relu at 0, max over equal values), backward itself
# jumps, and no double backward matches finite differences across the jump: the second order
# is then judged again at a point this far (relative) off the check's, where backward is smooth.
OFF_KINKS = 1e-2
MOVED_OFF = (
    "judged at a point moved {fraction:.0%} off the check's: at the check's own point backward is not "
    "differentiable ({failing} {elements} disagreed; the layer sits on kinks or ties there)"
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
    layer_inputs: tuple[int, ...] = ()  # positions of the layer's differentiated inputs in ``inputs``


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
    return SecondOrder(forward2, backward2, inputs, options, origin, started, tuple(plan.diff))


@dataclass
class Judged:
    """The nested check kept, a note where it was judged off the check's point, and the calls
    of a first run that was not kept."""

    result: CheckResult
    note: str | None = None
    discarded: dict[str, int] = dataclasses.field(default_factory=dict)


def judged(second: SecondOrder, run: Callable[[SecondOrder], CheckResult], kinks: int) -> Judged:
    """The nested check of ``second`` (``run``), and a note where it was judged off the kinks:
    a gradient mismatch at the check's point where backward may jump (``kinks`` found by the
    first order, or exact zeros or ties in a float32/float64 input) is judged again at a point
    moved OFF_KINKS off it (no contract failed: those are findings wherever the point is). A
    double backward wrong anywhere but exactly on the kinks is wrong at the moved point too; one
    right wherever backward is differentiable passes there, and that verdict is kept. Float16
    and bfloat16 inputs are never moved: their data is all ties, and their finite differences
    too coarse for a second run to be more than a second chance."""
    nested = run(second)
    wrong = [r for r in nested.inputs if not r.passed]
    if nested.passed or not wrong or nested.errors or not _may_jump(second, kinks):
        return Judged(nested)
    moved = run(_moved_off(second))
    if not moved.passed:
        return Judged(nested, discarded=moved.calls)
    failing = sum(max(r.failing, 1) for r in wrong)
    elements = "element" if failing == 1 else "elements"
    note = MOVED_OFF.format(fraction=OFF_KINKS, failing=failing, elements=elements)
    return Judged(moved, note, nested.calls)


def _may_jump(second: SecondOrder, kinks: int) -> bool:
    inputs = [second.inputs[i] for i in second.layer_inputs]
    if not inputs or any(dtype_name(x) not in ("float32", "float64") for x in inputs):
        return False
    return kinks > 0 or any(special_elements(to_numpy(x), exhaustive=True).size for x in inputs)


def _moved_off(second: SecondOrder) -> SecondOrder:
    """``second`` at inputs whose differentiated elements moved by random signed OFF_KINKS of
    their magnitude (at least of the input's scale): ties broken, zeros and any other kink left
    by far more than a finite-difference step. grad_outputs stay: backward is linear in them."""
    rng = np.random.default_rng([int(second.options.get("seed", 0)), 22])
    inputs = list(second.inputs)
    for i in second.layer_inputs:
        x = inputs[i]
        host = to_numpy(x).astype(np.float64)
        offset = signed_magnitudes(rng, host.shape) * OFF_KINKS
        offset *= np.maximum(np.abs(host), input_scale(host))
        inputs[i] = _like(x, host + offset)
    return dataclasses.replace(second, inputs=inputs)


def _like(x: Any, values: np.ndarray) -> Any:
    """``values`` as an array of x's library, dtype and device."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch.as_tensor(values, device=x.device).to(x.dtype)
    module = sys.modules.get(type(x).__module__.split(".")[0])
    if module is not None and module.__name__ == "cupy":
        return module.asarray(values, dtype=x.dtype)
    return np.asarray(values, dtype=x.dtype)


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


def part(second: SecondOrder, judgement: Judged, context: Context) -> CheckPart:
    """The nested check as the ``second_order`` part, its calls added to the layer's own count
    (forward2 calls are backward calls, backward2 ones double backward calls)."""
    nested, note = judgement.result, judgement.note
    timed_out = nested.finding("timeout")
    if timed_out is not None:
        raise CheckTimeout(timed_out.message)
    counter = context.calls.counter
    spent = {k: nested.calls.get(k, 0) + judgement.discarded.get(k, 0) for k in ("forward", "backward")}
    counter["backward"] += spent["forward"]
    counter["double_backward"] += spent["backward"]
    calls = {"backward": spent["forward"], "double_backward": spent["backward"] + 1}
    names = ", ".join(r.name for r in nested.inputs)
    modes = sorted({r.mode for r in nested.inputs})
    how = "autograd through backward" if second.origin.startswith("torch") else "double_backward="
    how = "jax.vjp through the rules" if second.origin.startswith(("jax.", "JAX")) else how
    what = (
        f"double backward ({how}) w.r.t. {names} against finite differences of backward ({', '.join(modes)})"
    )
    seconds = time.perf_counter() - second.started
    if note is not None:
        what = f"{what}; {note}"
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
