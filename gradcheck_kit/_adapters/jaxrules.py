"""JAX functions with hand-written rules (``jax.custom_vjp``, ``jax.custom_jvp``) behind
gk.check's conventions.

* **Forward** is the function itself, params as keywords; jitted functions work alike.
* **Backward** is ``jax.vjp`` of the function, which runs a ``custom_vjp``'s fwd and bwd rules
  (and, for a ``custom_jvp``, JAX's transpose of the jvp rule). A grad_output of None (an
  output that is not floating) is a zero cotangent.
* **Forward mode** (``custom_jvp``) is ``jax.jvp`` of the function, which runs the jvp rule;
  tangents left None are zeros (``float0`` for integer inputs).
* **Double backward** (checked with ``order=2`` only) is ``jax.vjp`` of backward as a function
  of (arguments, grad_output): JAX differentiating through the rules (reverse over reverse).

Arguments are JAX pytrees; the engine's view (``_engine.jaxview``) flattens them and converts
arrays at every call, so these callables see and return the caller's own structures.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from .._ground.jaxarrays import import_jax
from ..errors import InvalidArgument

CUSTOM_KINDS = ("custom_vjp", "custom_jvp")


def rule_kind(fn: Any) -> str | None:
    """``custom_vjp`` or ``custom_jvp`` for such a function (also under ``jax.jit`` and other
    wrappers that keep ``__wrapped__``), else None."""
    jax = import_jax("gk.from_custom_vjp")
    seen = 0
    while fn is not None and seen < 16:
        if isinstance(fn, jax.custom_vjp):
            return "custom_vjp"
        if isinstance(fn, jax.custom_jvp):
            return "custom_jvp"
        fn, seen = getattr(fn, "__wrapped__", None), seen + 1
    return None


def check_callable(fn: Any, adapter: str) -> None:
    """InvalidArgument unless ``fn`` is callable (JAX is needed too: ImportError else)."""
    import_jax(adapter)
    if not callable(fn):
        raise InvalidArgument(
            f"f={fn!r} must be a callable JAX function (a jax.custom_vjp or custom_jvp one)"
        )


def input_names(fn: Any) -> list[str]:
    """The function's positional parameters (through ``__wrapped__``, as jit and custom_* keep it)."""
    P = inspect.Parameter
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]


def _bound(fn: Callable[..., Any], params: dict[str, Any]) -> Callable[..., Any]:
    return functools.partial(fn, **params) if params else fn


def _zero_cotangent(out: Any) -> Any:
    jax = import_jax("a JAX layer")
    np = jax.numpy
    if jax.numpy.issubdtype(out.dtype, jax.numpy.inexact):
        return np.zeros_like(out)
    import numpy

    return numpy.zeros(out.shape, dtype=jax.dtypes.float0)


def _fill(primals: Any, given: Any) -> Any:
    """``given`` (a pytree like ``primals`` with None where nothing was given, or None) with
    zeros in those places: float0 ones for integer leaves, as JAX asks."""
    jax = import_jax("a JAX layer")
    if given is None:
        return jax.tree_util.tree_map(_zero_cotangent, primals)
    return jax.tree_util.tree_map(
        lambda p, g: _zero_cotangent(p) if g is None else g, primals, given, is_leaf=lambda v: v is None
    )


def vjp(fn: Callable[..., Any], grad_output: Any, args: Sequence[Any], params: dict[str, Any]) -> tuple:
    """``jax.vjp``'s cotangents for the arguments: one pytree per argument."""
    jax = import_jax("a JAX layer")
    out, pullback = jax.vjp(_bound(fn, params), *args)
    return tuple(pullback(_fill(out, grad_output)))


def jvp(fn: Callable[..., Any], tangents: Sequence[Any], args: Sequence[Any], params: dict[str, Any]) -> Any:
    """``jax.jvp``'s output tangents for one tangent pytree per argument (None: zeros)."""
    jax = import_jax("a JAX layer")
    filled = tuple(_fill(a, t) for a, t in zip(args, tangents))
    _, out = jax.jvp(_bound(fn, params), tuple(args), filled)
    return out


def double_vjp(
    fn: Callable[..., Any], grad_grads: Sequence[Any], grad_output: Any, args: Sequence[Any], params: Any
) -> tuple[tuple, Any]:
    """The VJP of (arguments, grad_output) -> ``vjp`` above for ``grad_grads`` (one pytree per
    argument, None where not differentiated): (one pytree per argument, one per output)."""
    jax = import_jax("a JAX layer")
    f = _bound(fn, params)
    out, _ = jax.vjp(f, *args)
    dy = _fill(out, grad_output)

    def backward(primals: tuple, cotangent: Any) -> tuple:
        return tuple(jax.vjp(f, *primals)[1](cotangent))

    grads, pullback = jax.vjp(backward, tuple(args), dy)
    d_args, d_dy = pullback(tuple(_fill(g, gg) for g, gg in zip(grads, grad_grads)))
    return tuple(d_args), d_dy
