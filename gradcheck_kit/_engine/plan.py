"""Validated arguments of ``gk.check``: anything unusable raises ``gk.InvalidArgument`` naming
the offending value, the rule, and what is accepted."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._adapters.extras import Extras, extras_of
from .._ground.backends import Backend, backend_of, dtype_name, is_array, is_floating, to_numpy
from .._ground.vocabulary import MODES
from ..errors import InvalidArgument
from ..registry import Case, positional_names
from . import jaxview
from .realview import RealView, complex_positions

ORDERS = (1, 2)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """``gk.check``'s arguments, validated: the layer, its inputs and what to check."""

    forward: Callable[..., Any]
    backward: Callable[..., Any]
    inputs: list[Any]
    params: dict[str, Any]
    backend: Backend
    names: list[str]  # the inputs' names (forward's parameter names where they fit)
    diff: list[int]  # the inputs to differentiate
    seed: int
    rtol: float | None
    atol: float | None
    mode: str
    name: str
    case: str  # the inputs and params in words
    extras: Extras | None = None  # what the layer offers beyond backward (jvp, double backward, vmap)
    order: int | None = None  # 1: first order only, 2: second order too, None: where it can be
    view: RealView | None = None  # complex inputs or outputs, checked through their real view
    jax: jaxview.JaxView | None = None  # a JAX layer, checked through host arrays


def make_plan(
    *,
    forward: Any,
    backward: Any,
    inputs: Any,
    params: Any,
    wrt: Any,
    backend: str | None,
    seed: Any,
    rtol: Any,
    atol: Any,
    mode: Any,
    name: str | None,
    jvp: Any = None,
    double_backward: Any = None,
    order: Any = None,
    complex_outputs: bool = False,
) -> Plan:
    """The validated ``Plan``; InvalidArgument naming the offending value and the rule. Complex
    inputs (or, with ``complex_outputs``, complex outputs) are checked through a real view."""
    for role, fn in (("forward", forward), ("backward", backward)):
        if not callable(fn):
            raise InvalidArgument(f"{role}={fn!r} must be callable")
    for role, fn in (("jvp", jvp), ("double_backward", double_backward)):
        if fn is not None and not callable(fn):
            raise InvalidArgument(f"{role}={fn!r} must be callable (or None)")
    if order is not None and (isinstance(order, bool) or order not in ORDERS):
        raise InvalidArgument(f"order={order!r} must be 1 (first order), 2 (second order too) or None")
    values = dict(params or {})
    original, jax = forward, None
    if jaxview.applies(inputs):
        if backend not in (None, "jax"):
            raise InvalidArgument(f"backend={backend!r} but the inputs are jax arrays")
        jax, inputs = jaxview.build(inputs, [n for n in positional_names(forward) if n not in values])
        forward, backward = jax.forward(forward), jax.backward(backward)
        wrt, backend = jax.selected(wrt), None
    arrays = _normalize_inputs(inputs)
    chosen = backend_of([x for x in arrays if is_array(x)], requested=backend)
    arrays = [chosen.from_numpy(x) if isinstance(x, _Scalar) else x for x in arrays]
    names = jax.names if jax is not None else _input_names(forward, backward, len(arrays), values)
    if jax is not None:
        chosen = dataclasses.replace(chosen, shown=jax.label)
    if mode not in MODES:
        raise InvalidArgument(f"mode={mode!r} is unknown; accepted: {', '.join(MODES)}")
    extras = _extras(extras_of(original), jvp, double_backward)
    if jax is not None:
        extras = jax.extras(extras)
    if order == 2 and (extras is None or not (extras.double_backward or extras.not_twice_differentiable)):
        raise InvalidArgument(
            "order=2 needs a double backward: pass double_backward=, or check a torch.autograd.Function "
            "(gk.from_autograd_function)"
        )
    case = Case(tuple(arrays), values).describe(names)
    complex_inputs = complex_positions(arrays)
    view = None
    if complex_inputs or complex_outputs:
        view = RealView(complex_inputs, {k: dtype_name(arrays[k]) for k in complex_inputs})
        forward, backward, extras = view.forward(forward), view.backward(backward), view.extras(extras)
        arrays = view.real_inputs(arrays)
    diff = _differentiable(arrays, names, wrt)
    if extras is not None and extras.differentiate is not None:
        extras.differentiate(frozenset(diff))
    return Plan(
        forward=forward,
        backward=backward,
        inputs=arrays,
        params=values,
        backend=chosen,
        names=names,
        diff=diff,
        seed=_nonnegative_int("seed", seed),
        rtol=_tolerance("rtol", rtol),
        atol=_tolerance("atol", atol),
        mode=mode,
        name=name or getattr(forward, "__qualname__", None) or getattr(forward, "__name__", None) or "layer",
        case=case,
        extras=extras,
        order=order,
        view=view,
        jax=jax,
    )


def _extras(given: Extras | None, jvp: Any, double_backward: Any) -> Extras | None:
    """The layer's Extras, with the caller's ``jvp=`` and ``double_backward=`` in front."""
    if jvp is None and double_backward is None:
        return given
    extras = given or Extras()
    if jvp is not None:
        extras = extras.replace(jvp=jvp)
    if double_backward is not None:
        extras = extras.replace(double_backward=double_backward, not_twice_differentiable=None)
    return extras


class _Scalar(np.ndarray):
    """Marks a Python number the caller passed as an input (converted to the backend later)."""


def _normalize_inputs(inputs: Any) -> list[Any]:
    if is_array(inputs) or isinstance(inputs, (int, float)):
        inputs = (inputs,)
    if not isinstance(inputs, (tuple, list)):
        raise InvalidArgument(f"inputs={inputs!r} must be a tuple of arrays")
    out = []
    for k, x in enumerate(inputs):
        if isinstance(x, bool) or not (is_array(x) or isinstance(x, (int, float))):
            raise InvalidArgument(
                f"inputs[{k}]={x!r} is not an array; pass arrays as inputs and anything static through params"
            )
        out.append(np.asarray(x).view(_Scalar) if isinstance(x, (int, float)) else x)
    return out


def _input_names(forward: Any, backward: Any, n: int, params: dict[str, Any]) -> list[str]:
    """Forward's parameter names, without those given as params (an adapter places params by
    name: ``forward(ctx, x, k, w)`` has inputs x and w when k is a param); else backward's after
    grad_output (a NumPy ufunc forward such as ``np.tanh`` has no signature before NumPy 2.3)."""
    for signature, skip in ((positional_names(forward), 0), (positional_names(backward), 1)):
        names = [name for name in signature[skip:] if name not in params]
        if len(names) >= n and len(set(names[:n])) == n:
            return names[:n]
    return [f"input{k}" for k in range(n)]


def _differentiable(inputs: list[Any], names: list[str], wrt: Any) -> list[int]:
    chosen = _chosen(inputs, names, wrt)
    for k in chosen:
        _require_finite(inputs[k], names[k])
    return chosen


def _chosen(inputs: list[Any], names: list[str], wrt: Any) -> list[int]:
    if wrt is None:
        return [k for k, x in enumerate(inputs) if is_floating(x)]
    chosen = [wrt] if isinstance(wrt, (int, str)) else list(wrt)
    out = []
    for w in chosen:
        k = names.index(w) if isinstance(w, str) and w in names else w
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(inputs):
            raise InvalidArgument(f"wrt={wrt!r}: {w!r} is not an input; inputs are {names}")
        if not is_floating(inputs[k]):
            raise InvalidArgument(
                f"wrt={wrt!r}: input {names[k]} is {dtype_name(inputs[k])}; only floating inputs "
                "are differentiated"
            )
        out.append(k)
    return sorted(set(out))


def _require_finite(x: Any, name: str) -> None:
    """A differentiated input must be finite (there is no difference around -inf); an input
    left out with wrt= (an additive -inf attention mask) is passed as it is."""
    values = to_numpy(x)
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(v) for v in np.unravel_index(int(np.flatnonzero(bad)[0]), values.shape))
        raise InvalidArgument(
            f"input {name} contains NaN or Inf ({int(bad.sum())} of {values.size} elements, first "
            f"{values[first]} at {list(first)}); a differentiated input must be finite: leave it "
            f"out with wrt= (an additive -inf mask), or use a large finite value (-1e9) instead"
        )


def _nonnegative_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidArgument(f"{label}={value!r} must be a non-negative int")
    return int(value)


def positive_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InvalidArgument(f"{label}={value!r} must be a positive int")
    return int(value)


def _tolerance(label: str, value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value >= 0
        or value == float("inf")
    ):
        raise InvalidArgument(f"{label}={value!r} must be a finite number >= 0 (or None)")
    return float(value)
