"""The ``undefined_grad`` part: a layer with several outputs whose backward may be handed an
undefined gradient (a torch.autograd.Function: autograd passes ``None`` for an output nobody
used under ``ctx.set_materialize_grads(False)``, zeros otherwise) must behave as if that
gradient were zero.

For each output in turn, backward runs with that output's gradient undefined and the others
the check's grad_output, and again with it an explicit zero tensor; the two must agree within
the rounding repeated calls may show. A backward that raises on the undefined gradient (``grad
* 2`` on None) is a failure naming the output: it crashes in real use as soon as one output is
left out of the loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._engine.tolerances import repeat_tolerance
from .._ground.backends import eps, is_floating, to_numpy
from .._ground.formatting import num
from .._ground.invoke import LayerCallError
from .._result import FAILED, PASSED, CheckPart
from .context import Context

NAME = "undefined_grad"


def applies(context: Context) -> bool:
    extras = context.plan.extras
    return extras is not None and extras.undefined_grads and len(_outputs(context)) > 1


def _outputs(context: Context) -> list[int]:
    return [k for k, d in enumerate(context.observed.dy) if d is not None]


def _label(context: Context, k: int) -> str:
    return "grad_output" if len(context.observed.dy) == 1 else f"grad_output[{k}]"


def part(context: Context) -> CheckPart:
    outputs = _outputs(context)
    what = (
        f"backward with each of {len(outputs)} output gradients undefined in turn (None, or zeros where "
        "autograd materializes them), against that gradient zero"
    )
    for k in outputs:
        problem = _undefined(context, k)
        if problem is not None:
            return CheckPart(NAME, FAILED, what, cause=problem)
    return CheckPart(NAME, PASSED, f"{what}: the same")


def _undefined(context: Context, k: int) -> str | None:
    calls, observed = context.calls, context.observed
    left_out = [None if j == k else d for j, d in enumerate(observed.dy)]
    zeroed = [calls.backend.xp.zeros_like(d) if j == k else d for j, d in enumerate(observed.dy)]
    label = _label(context, k)
    try:
        undefined = calls.backward(left_out, calls.copies(observed.originals))
    except LayerCallError as exc:
        return (
            f"backward {exc.message} when {label} was undefined (autograd passes None for an output "
            "left out of the loss under ctx.set_materialize_grads(False)): treat an undefined gradient "
            "as zero"
        )
    zero = calls.backward(zeroed, calls.copies(observed.originals))
    for i in observed.usable:
        problem = _compare(context.plan.names[i], undefined[i], zero[i], label)
        if problem is not None:
            return problem
    return None


def _compare(name: str, undefined: Any, zero: Any, label: str) -> str | None:
    like = zero if zero is not None else undefined
    if like is None:
        return None
    a, b = _host(undefined, like), _host(zero, like)
    if a.shape != b.shape:
        return (
            f"with {label} undefined, backward's gradient for {name} has shape {a.shape}, with it zero "
            f"{b.shape}"
        )
    dtype = like.dtype if is_floating(like) else "float64"
    allowed = repeat_tolerance(eps(dtype), float(np.max(np.abs(b), initial=0.0)), b.size)
    excess = np.abs(a - b) - allowed
    if not excess.size or not (excess > 0).any():
        return None
    where = tuple(int(v) for v in np.unravel_index(int(np.argmax(excess)), excess.shape))
    return (
        f"with {label} undefined, backward's gradient for {name} differs from the one with {label} zero "
        f"at {list(where)}: {num(a[where], 7)} vs {num(b[where], 7)} (an undefined gradient must count "
        "as zero)"
    )


def _host(x: Any, like: Any) -> np.ndarray:
    if x is None:
        return np.zeros(tuple(like.shape))
    return np.asarray(to_numpy(x), dtype=np.float64)
