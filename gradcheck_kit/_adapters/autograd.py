"""A ``torch.autograd.Function`` behind gk.check's conventions, and what else it offers.

* **Arguments by name**: params go to forward's parameters of the same name and the inputs
  fill the others in order, so ``forward(ctx, x, k, w)`` is checked with inputs ``(x, w)`` and
  ``{"k": 3}``; a parameter left out before a named one takes its default.
* **In place**: forward learns on its first call (on clones, under autograd) which arguments
  it writes into and declares with ``ctx.mark_dirty``; those are cloned on every call, so the
  check runs on fresh copies. A write it does not declare is left to hit the caller's array,
  where the contracts see it (a silent corruption in real use).
* **Backward** is autograd's vector-Jacobian product through the Function's ``backward``; a
  ``None`` grad_output leaves that output out, which is how autograd hands the Function an
  undefined gradient (``None`` under ``ctx.set_materialize_grads(False)``, else zeros).
* **Double backward** differentiates that product again (``create_graph=True``), w.r.t. the
  inputs and grad_output; **forward mode** runs the Function on dual tensors (its ``jvp``);
  **vmap** runs it under ``torch.func.vmap``, forward and ``torch.func.vjp``'s backward.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgument
from .extras import Extras

ONCE = "trying to differentiate twice"  # the error once_differentiable raises in double backward
NO_GRAPH = "backward's gradients carry no autograd graph"


def _torch() -> Any:
    import torch

    return torch


def defines(function: Any, name: str) -> bool:
    """Whether the Function (or a base class of the user's) defines ``name`` itself."""
    return any(name in vars(c) for c in function.__mro__ if not c.__module__.startswith("torch."))


def forward_parameters(function: Any) -> list[inspect.Parameter]:
    """forward's parameters after ``ctx`` (none to skip for the ``setup_context`` style)."""
    try:
        params = list(inspect.signature(function.forward).parameters.values())
    except (TypeError, ValueError):
        return []
    if not defines(function, "setup_context") and params:
        params = params[1:]  # ctx
    return params


def is_differentiable(t: Any) -> bool:
    return bool(t.is_floating_point() or t.is_complex())


class FunctionCalls:
    """Calls of ``function.apply`` with gk.check's (inputs, params), on fresh copies where the
    Function writes into its arguments."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.label = getattr(function, "__name__", "Function")
        self.parameters = forward_parameters(function)
        self.dirty: frozenset[int] | None = None  # positions in apply's arguments, once learnt
        self.differentiated: frozenset[int] | None = None  # inputs requiring grad (None: all floating)

    def differentiate(self, inputs: frozenset[int]) -> None:
        """Only ``inputs`` (indices among the check's inputs) require grad from now on: the
        Function's ``ctx.needs_input_grad`` is False for the others, as in real use."""
        self.differentiated = inputs

    # -- arguments ------------------------------------------------------------------------------
    def arguments(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> tuple[list[Any], list[int]]:
        """apply's arguments and the positions the inputs took among them."""
        P = inspect.Parameter
        named = [p for p in self.parameters if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
        unknown = [k for k in params if k not in {p.name for p in named}]
        if unknown:
            names = ", ".join(p.name for p in named)
            raise TypeError(
                f"params {unknown} are not parameters of {self.label}.forward ({names}); params are "
                "passed to forward's parameters of the same name"
            )
        last = max((k for k, p in enumerate(named) if p.name in params), default=-1)
        values: list[Any] = []
        positions: list[int] = []
        rest = list(inputs)
        for k, p in enumerate(named):
            if p.name in params:
                values.append(params[p.name])
            elif rest:
                positions.append(len(values))
                values.append(rest.pop(0))
            elif k < last and p.default is not P.empty:
                values.append(p.default)
            elif k < last:
                raise TypeError(f"{self.label}.forward's parameter {p.name!r} has no input, param or default")
            else:
                break
        positions += range(len(values), len(values) + len(rest))  # forward(ctx, *tensors)
        return values + rest, positions

    # -- calls ----------------------------------------------------------------------------------
    def forward(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> Any:
        """function.apply without autograd, on clones of the arguments it marks dirty."""
        torch = _torch()
        values, positions = self.arguments(inputs, params)
        if self.dirty is None:
            probe = self._learn(values, positions)
            if probe is not None:
                return probe
        with torch.no_grad():
            return self.function.apply(*self._fresh(values))

    def graph(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> tuple[list[Any], tuple[Any, ...]]:
        """(a leaf per input, differentiable where floating or complex; the outputs) under autograd."""
        torch = _torch()
        values, positions = self.arguments(inputs, params)
        if self.dirty is None:
            self._learn(values, positions)
        for j, k in enumerate(positions):
            if isinstance(values[k], torch.Tensor):
                wanted = self.differentiated is None or j in self.differentiated
                values[k] = values[k].detach().requires_grad_(wanted and is_differentiable(values[k]))
        with torch.enable_grad():
            out = self.function.apply(*self._fresh(values))
        return [values[k] for k in positions], out if isinstance(out, tuple) else (out,)

    def call_on(self, values: list[Any]) -> Any:
        """function.apply on ``values`` (apply's arguments), fresh where it writes into them."""
        return self.function.apply(*self._fresh(values))

    def _fresh(self, values: list[Any]) -> list[Any]:
        return [v.clone() if k in (self.dirty or ()) else v for k, v in enumerate(values)]

    def _learn(self, values: list[Any], positions: list[int]) -> Any:
        """Run once under autograd on clones: an argument whose version counter moved was written
        into; where forward declared it (``ctx.mark_dirty``), autograd rebased its history onto
        the Function. Returns the outputs (detached) unless an undeclared write means the call
        must run again on the caller's arrays, for the contracts to see it."""
        torch = _torch()
        clones, before = list(values), {}
        for k in positions:
            v = values[k]
            if isinstance(v, torch.Tensor):
                clones[k] = v.detach().requires_grad_(is_differentiable(v)).clone()
                before[k] = (clones[k].grad_fn, clones[k]._version)
        with torch.enable_grad():
            out = self.function.apply(*clones)
        written = {k for k, (_, version) in before.items() if clones[k]._version != version}
        self.dirty = frozenset(k for k in written if clones[k].grad_fn is not before[k][0])
        if written - self.dirty:
            return None
        return tuple(o.detach() for o in out) if isinstance(out, tuple) else out.detach()


def vjp(calls: FunctionCalls, grad_output: Any, inputs: Sequence[Any], params: Mapping[str, Any]) -> tuple:
    """Autograd's vector-Jacobian product through the Function's backward: one gradient per
    input (None for an input not differentiated or not reached)."""
    torch = _torch()
    leaves, outs = calls.graph(inputs, params)
    dys = grad_output if isinstance(grad_output, tuple) else (grad_output,)
    pairs = [(o, d) for o, d in zip(outs, dys) if d is not None and o.requires_grad]
    wanted = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]
    if not pairs or not wanted:
        return tuple(None for _ in leaves)
    found = iter(torch.autograd.grad([o for o, _ in pairs], wanted, [d for _, d in pairs], allow_unused=True))
    return tuple(next(found) if isinstance(t, torch.Tensor) and t.requires_grad else None for t in leaves)


def double_vjp(
    calls: FunctionCalls, grad_grads: Sequence[Any], grad_output: Any, inputs: Sequence[Any], params: Any
) -> tuple[tuple, tuple]:
    """The VJP of (inputs, grad_output) -> the VJP above, for ``grad_grads`` (one per input):
    autograd through the Function's backward run with ``create_graph=True``."""
    torch = _torch()
    leaves, outs = calls.graph(inputs, params)
    given = grad_output if isinstance(grad_output, tuple) else (grad_output,)
    dys = [None if d is None else d.detach().requires_grad_(True) for d in given]
    pairs = [(o, d) for o, d in zip(outs, dys) if d is not None and o.requires_grad]
    wanted = [k for k, t in enumerate(leaves) if isinstance(t, torch.Tensor) and t.requires_grad]
    with torch.enable_grad():
        first = torch.autograd.grad(
            [o for o, _ in pairs], [leaves[k] for k in wanted], [d for _, d in pairs],
            create_graph=True, allow_unused=True,
        )  # fmt: skip
    terms = [(g, grad_grads[k]) for g, k in zip(first, wanted) if g is not None and grad_grads[k] is not None]
    if not any(g.requires_grad for g, _ in terms):
        raise RuntimeError(f"{NO_GRAPH} (computed outside autograd, or detached)")
    terms = [(g, gg) for g, gg in terms if g.requires_grad]  # one with no graph is a constant
    targets = [leaves[k] for k in wanted] + [d for d in dys if d is not None]
    second = list(
        torch.autograd.grad([g for g, _ in terms], targets, [gg for _, gg in terms], allow_unused=True)
    )
    grads: list[Any] = [None] * len(leaves)
    for k in wanted:
        g = second.pop(0)
        grads[k] = torch.zeros_like(leaves[k]) if g is None else g
    dy_grads = [None if d is None else _or_zeros(second.pop(0), d) for d in dys]
    return tuple(grads), tuple(dy_grads)


def _or_zeros(g: Any, like: Any) -> Any:
    return _torch().zeros_like(like) if g is None else g


def jvp(calls: FunctionCalls, tangents: Sequence[Any], inputs: Sequence[Any], params: Any) -> tuple:
    """Forward mode: the Function on dual tensors, the output tangents (zeros where none)."""
    torch = _torch()
    import torch.autograd.forward_ad as fwAD

    values, positions = calls.arguments(inputs, params)
    if calls.dirty is None:
        calls._learn(values, positions)
    with fwAD.dual_level(), warnings.catch_warnings():
        # torch's own forward AD of a Function scripts a helper: not the user's warning to see
        warnings.filterwarnings(
            "ignore", message=".*torch.jit.script. is deprecated", category=DeprecationWarning
        )
        for k, t in zip(positions, tangents):
            if t is not None:
                values[k] = fwAD.make_dual(values[k].detach(), t)
        with torch.no_grad():
            out = calls.call_on(values)
        outs = out if isinstance(out, tuple) else (out,)
        tangent = [fwAD.unpack_dual(o).tangent for o in outs]
        return tuple(torch.zeros_like(o) if t is None else t.clone() for o, t in zip(outs, tangent))


def vmap_forward(calls: FunctionCalls, inputs: Sequence[Any], batched: Sequence[bool], params: Any) -> tuple:
    """The Function under ``torch.func.vmap`` over the leading axis of the ``batched`` inputs."""
    torch = _torch()

    def one(*items: Any) -> Any:
        values, _ = calls.arguments(items, params)
        return calls.call_on(values)

    dims = tuple(0 if b else None for b in batched)
    with torch.no_grad():
        out = torch.func.vmap(one, in_dims=dims)(*inputs)
    return out if isinstance(out, tuple) else (out,)


def vmap_vjp(calls: FunctionCalls, grad_outputs: Any, inputs: Sequence[Any], params: Any) -> tuple:
    """Backward under ``torch.func.vmap`` over the leading axis of every grad_output:
    ``torch.func.vjp``'s pullback, vectorized (what ``jacrev`` and batched Hessians run)."""
    torch = _torch()
    wanted = [k for k, x in enumerate(inputs) if isinstance(x, torch.Tensor) and is_differentiable(x)]

    def f(*moving: Any) -> Any:
        items = list(inputs)
        for k, x in zip(wanted, moving):
            items[k] = x
        values, _ = calls.arguments(items, params)
        return calls.call_on(values)

    out, pullback = torch.func.vjp(f, *[inputs[k] for k in wanted])
    outs = out if isinstance(out, tuple) else (out,)
    dys = grad_outputs if isinstance(grad_outputs, tuple) else (grad_outputs,)
    batch = next(d.shape[0] for d in dys if d is not None)
    filled = tuple(
        d if d is not None else torch.zeros((batch, *o.shape), dtype=o.dtype, device=o.device)
        for d, o in zip(dys, outs)
    )
    grads = torch.func.vmap(pullback)(filled if isinstance(out, tuple) else filled[0])
    found = iter(grads)
    return tuple(next(found) if k in wanted else None for k in range(len(inputs)))


def once_differentiable(function: Any) -> bool:
    """Whether backward is wrapped in ``torch.autograd.function.once_differentiable``: every
    function it wraps shares the wrapper's code object."""
    from torch.autograd.function import once_differentiable as wrap

    code = getattr(function.backward, "__code__", None)
    return code is not None and code is wrap(lambda ctx: None).__code__


@dataclass(frozen=True)
class FunctionExtras(Extras):
    """A Function's Extras; they also mark its forward as torch-native (``LayerSpec.native_backend``
    reads ``native_backend``), so the CLI and the plugin check it on torch by default."""

    native_backend: str = "torch"


def function_extras(function: Any, calls: FunctionCalls) -> Extras:
    """What the Function offers beyond first-order backward, wired to ``calls``."""
    label = f"torch.autograd.Function {calls.label}"
    rule = None
    if getattr(function, "generate_vmap_rule", False):
        rule = "generate_vmap_rule=True"
    elif defines(function, "vmap"):
        rule = "its vmap staticmethod"
    once = once_differentiable(function)
    return FunctionExtras(
        jvp=_bound(jvp, calls) if defines(function, "jvp") else None,
        double_backward=None if once else _bound(double_vjp, calls, twice=True),
        not_twice_differentiable=f"{calls.label}.backward is @once_differentiable" if once else None,
        vmap_forward=_bound(vmap_forward, calls, batched=True) if rule else None,
        vmap_backward=_bound(vmap_vjp, calls) if rule else None,
        vmap_rule=rule,
        undefined_grads=True,
        differentiate=calls.differentiate,
        origin=label,
    )


def _bound(fn: Any, calls: FunctionCalls, *, twice: bool = False, batched: bool = False) -> Any:
    """``fn`` as an Extras callable: ``(first, *inputs, **params)`` (two leading arguments for
    double backward, inputs then flags for vmap's forward)."""
    if twice:
        return lambda grad_grads, grad_output, *inputs, **params: fn(
            calls, grad_grads, grad_output, inputs, params
        )
    if batched:
        return lambda inputs, flags, **params: fn(calls, inputs, flags, params)
    return lambda first, *inputs, **params: fn(calls, first, inputs, params)


def check_function(function: Any) -> None:
    """InvalidArgument unless ``function`` is a torch.autograd.Function subclass."""
    torch = _torch()
    if not (isinstance(function, type) and issubclass(function, torch.autograd.Function)):
        raise InvalidArgument(
            f"function={function!r} is not a torch.autograd.Function subclass; pass the class itself "
            "(not an instance, nor its apply)"
        )
