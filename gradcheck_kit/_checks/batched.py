"""The ``batched`` part: a layer that supports a vectorizing map (a torch.autograd.Function with
``generate_vmap_rule = True`` or a ``vmap`` staticmethod) must give under it what it gives item
by item.

* forward under ``torch.func.vmap`` over a batch of inputs (the caller's point and perturbed
  copies of it) against forward called on each;
* backward under ``torch.func.vmap`` over a batch of grad_outputs (``torch.func.vjp``'s
  pullback, vectorized: what ``jacrev`` and batched Hessians run) against backward called on
  each.

Both are compared within the rounding a reordered sum may carry (``repeat_tolerance``): a
deterministic op agrees exactly; a vmap rule that ignores the batch axis, or a backward that
calls ``.item()``, ``.numpy()`` or writes into an unbatched tensor, does not (or raises).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._engine.tolerances import repeat_tolerance
from .._ground.backends import dtype_name, eps, is_array, is_floating, to_numpy
from .._ground.draws import signed_magnitudes
from .._ground.formatting import num
from .._ground.invoke import LayerCallError, call
from .._result import FAILED, PASSED, CheckPart
from .context import Context, offered

NAME = "batched"
BATCH = 3  # items per batch: item 0 the caller's point, the others moved off it
SPREAD = 0.05  # the other items: each value scaled by 1 ± up to 7.5% (signs and zeros kept)
UNDER_VMAP = (
    ".item(), .numpy(), .tolist(), Python control flow on tensor values or in-place writes into "
    "unbatched tensors break under vmap"
)


def applies(context: Context) -> bool:
    extras = context.plan.extras
    return extras is not None and extras.vmap_forward is not None and extras.vmap_backward is not None


def part(context: Context) -> CheckPart:
    rule = context.plan.extras.vmap_rule or "its vmap rule"  # type: ignore[union-attr]
    what = f"forward and backward under torch.func.vmap ({rule}) over {BATCH} items, against the loop"
    try:
        problem = _forward(context) or _backward(context)
    except LayerCallError as exc:
        hint = f" ({UNDER_VMAP})" if "vmap" in exc.stage else ""
        return CheckPart(NAME, FAILED, what, cause=f"{exc.stage} {exc.message}{hint}")
    if problem is not None:
        return CheckPart(NAME, FAILED, what, cause=problem)
    return CheckPart(NAME, PASSED, f"{what}: the same")


def _forward(context: Context) -> str | None:
    """forward under vmap over a batch of inputs vs forward on each item."""
    calls, plan = context.calls, context.plan
    rng = np.random.default_rng([plan.seed, 17])
    batched = [is_array(x) and is_floating(x) for x in context.observed.originals]
    items = [_item(calls, context.observed.originals, batched, rng, k) for k in range(BATCH)]
    loop = [calls.forward(item, "forward (loop)") for item in items]
    stacked = [
        _stack(calls, [x[k] for x in items]) if batched[k] else items[0][k] for k in range(len(batched))
    ]
    vmapped = _vmapped(context, "forward", [stacked, batched])
    labels = [f"output {k}" if len(loop[0]) > 1 else "output" for k in range(len(loop[0]))]
    return _differ(
        "forward", labels, [[y[k] for y in loop] for k in range(len(labels))], list(vmapped), "inputs"
    )


def _backward(context: Context) -> str | None:
    """backward under vmap over a batch of grad_outputs vs backward for each."""
    calls, plan, observed = context.calls, context.plan, context.observed
    rng = np.random.default_rng([plan.seed, 18])
    dys = [[_like(calls, d, rng) for d in observed.dy] for _ in range(BATCH)]
    loop = [calls.backward(dy, calls.copies(observed.originals)) for dy in dys]
    stacked = [None if d is None else _stack(calls, [dy[k] for dy in dys]) for k, d in enumerate(observed.dy)]
    grad_output = stacked[0] if len(stacked) == 1 else tuple(stacked)
    args = [grad_output, *calls.copies(observed.originals)]
    vmapped = _vmapped(context, "backward", args)
    usable = observed.usable
    labels = [f"gradient for {plan.names[i]}" for i in usable]
    return _differ(
        "backward",
        labels,
        [[g[i] for g in loop] for i in usable],
        [vmapped[i] for i in usable],
        "grad_outputs",
    )


def _vmapped(context: Context, stage: str, args: list[Any]) -> Any:
    """The layer's vmap_forward or vmap_backward, counted as ``vmap`` calls."""
    fn = offered(context, f"vmap_{stage}")
    context.calls.counter["vmap"] += 1
    return call(fn, args, context.plan.params, f"{stage} under vmap")


def _item(calls: Any, inputs: list[Any], batched: list[bool], rng: np.random.Generator, k: int) -> list[Any]:
    if k == 0:
        return calls.copies(inputs)
    b = calls.backend
    out = []
    for x, moved in zip(inputs, batched):
        if not moved:
            out.append(x)
            continue
        factor = b.astype(b.from_numpy(1 + SPREAD * signed_magnitudes(rng, tuple(x.shape))), x.dtype)
        out.append(x * factor)
    return out


def _like(calls: Any, d: Any, rng: np.random.Generator) -> Any:
    if d is None:
        return None
    b = calls.backend
    return b.astype(b.from_numpy(signed_magnitudes(rng, tuple(d.shape))), d.dtype)


def _stack(calls: Any, arrays: list[Any]) -> Any:
    xp = calls.backend.xp
    return xp.stack(arrays, axis=0)


def _differ(
    stage: str, labels: list[str], loops: list[list[Any]], vmapped: list[Any], over: str
) -> str | None:
    """The first output (gradient) whose vmapped batch differs from the loop's, in words."""
    for label, items, batch in zip(labels, loops, vmapped):
        expected = np.stack([_host(g, items[0]) for g in items])  # type: ignore[misc]  # items[0] given
        got = _host(batch, None)
        if got is None or got.shape != expected.shape:
            shape = None if got is None else got.shape
            return f"under vmap, {stage}'s {label} has shape {shape}, the loop over {over} {expected.shape}"
        allowed = repeat_tolerance(eps(dtype_name(items[0]) if items[0] is not None else "float64"),
                                   float(np.max(np.abs(expected), initial=0.0)), expected.size)  # fmt: skip
        excess = np.abs(got - expected) - allowed
        if excess.size and np.nanmax(np.where(np.isnan(excess), np.inf, excess)) > 0:
            k = np.unravel_index(int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess))), excess.shape)
            where = [int(v) for v in k]
            return (
                f"under torch.func.vmap, {stage}'s {label} differs from the loop over {over} at {where} "
                f"(batch item {where[0]}): {num(got[k], 7)} vs {num(expected[k], 7)} "
                f"(allowed ±{num(allowed)})"
            )
    return None


def _host(x: Any, like: Any) -> np.ndarray | None:
    """A float64 host copy (zeros where a gradient is None and ``like`` gives its shape)."""
    if x is None:
        return None if like is None else np.zeros(tuple(like.shape))
    return np.asarray(to_numpy(x), dtype=np.float64) if is_array(x) else None
