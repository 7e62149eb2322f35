"""Adapters for JAX functions with hand-written rules: ``from_custom_vjp`` and
``from_custom_jvp`` return gk.check's (forward, backward) pair (``jaxrules`` does the work)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..registry import NATIVE_BACKEND_ATTRIBUTE
from .extras import EXTRAS_ATTRIBUTE, Extras
from .functions import LayerFunctions, _named


def _pair(f: Any, adapter: str, inputs: Sequence[str] | None, *, forward_mode: bool) -> LayerFunctions:
    from . import jaxrules

    jaxrules.check_callable(f, adapter)
    names = list(inputs) if inputs is not None else jaxrules.input_names(f)
    label = getattr(f, "__name__", None) or type(f).__name__

    def fwd(*args: Any, **params: Any) -> Any:
        return f(*args, **params)

    def bwd(grad_output: Any, *args: Any, **params: Any) -> Any:
        return jaxrules.vjp(f, grad_output, args, params)

    forward = _named(fwd, names, grad_first=False, label=label)
    rule = jaxrules.rule_kind(f)
    kind = f"jax.{rule}" if rule else "JAX function"
    extras = Extras(
        double_backward=lambda gg, dy, *args, **params: jaxrules.double_vjp(f, gg, dy, args, params),
        second_order_by_default=False,
        origin=f"{kind} {label}",
    )
    if forward_mode:
        jvp: Callable[..., Any] = lambda tangents, *args, **params: jaxrules.jvp(f, tangents, args, params)  # noqa: E731
        extras = extras.replace(jvp=jvp)
    setattr(forward, EXTRAS_ATTRIBUTE, extras)
    setattr(forward, NATIVE_BACKEND_ATTRIBUTE, "jax")  # the CLI and the plugin check it on jax by default
    return LayerFunctions(forward, _named(bwd, names, grad_first=True, label=f"{label}.backward"))


def from_custom_vjp(f: Callable[..., Any], *, inputs: Sequence[str] | None = None) -> LayerFunctions:
    """Wrap a JAX function with a ``jax.custom_vjp`` rule as a (forward, backward) pair.

    Forward is ``f`` itself; backward is ``jax.vjp`` of ``f``, which runs the rule's ``fwd``
    (and the residuals it saves) and ``bwd``. ``gk.check`` judges it against finite
    differences in float64 (``jax_enable_x64`` is set for the calls that need it and restored
    after), with kinks, float32 and bfloat16 layers and the diagnosis as for any layer. Jitted
    functions work, and so does any JAX function whose rules sit inside it. Inputs are JAX
    arrays or pytrees of them (dicts, tuples, lists): each leaf is checked as an input named
    by its path (``params['w']``); ``wrt=`` takes those names or an argument's name (all its
    leaves). Params are passed as keywords. ``gk.check(..., order=2)`` also checks the second
    order (``result.checks["second_order"]``): ``jax.vjp`` through the rules (reverse over
    reverse) against finite differences of backward.

    Parameters
    ----------
    f : callable
        The function: a ``jax.custom_vjp`` one with ``defvjp(fwd, bwd)``, possibly jitted.
    inputs : sequence of str, optional
        The arguments' names (default: ``f``'s positional parameters).

    Returns
    -------
    LayerFunctions
        The pair, for ``gk.check(*pair, (x, params))`` or ``gk.register``.

    Raises
    ------
    InvalidArgument
        When ``f`` is not callable.
    ImportError
        When JAX cannot be imported.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, gradcheck_kit as gk
    >>> @jax.custom_vjp
    ... def relu(x):
    ...     return jnp.maximum(x, 0.0)
    >>> relu.defvjp(lambda x: (relu(x), x > 0), lambda mask, g: (g * mask,))
    >>> gk.check(*gk.from_custom_vjp(relu), (jnp.array([-1.0, 0.0, 2.0]),)).passed  # a kink at 0
    True
    """
    return _pair(f, "gk.from_custom_vjp", inputs, forward_mode=False)


def from_custom_jvp(f: Callable[..., Any], *, inputs: Sequence[str] | None = None) -> LayerFunctions:
    """Wrap a JAX function with a ``jax.custom_jvp`` rule as a (forward, backward) pair.

    Backward is ``jax.vjp`` of ``f`` (JAX's transpose of the jvp rule), judged against finite
    differences; the rule itself is then checked as the ``forward_mode`` part
    (``result.checks["forward_mode"]``): ``jax.jvp`` along random tangents against finite
    differences, and against backward by the dot-product test <u, J v> = <J^T u, v>.
    Everything else (float64 runs, pytrees, jit, params) is as for ``from_custom_vjp``.

    Parameters
    ----------
    f : callable
        The function: a ``jax.custom_jvp`` one with ``defjvp``, possibly jitted.
    inputs : sequence of str, optional
        The arguments' names (default: ``f``'s positional parameters).

    Returns
    -------
    LayerFunctions
        The pair; its forward carries the jvp for ``gk.check``.

    Raises
    ------
    InvalidArgument
        When ``f`` is not callable.
    ImportError
        When JAX cannot be imported.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, gradcheck_kit as gk
    >>> @jax.custom_jvp
    ... def softplus(x):
    ...     return jnp.logaddexp(x, 0.0)
    >>> @softplus.defjvp
    ... def softplus_jvp(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return softplus(x), jax.nn.sigmoid(x) * t
    >>> result = gk.check(*gk.from_custom_jvp(softplus), (jnp.linspace(-2.0, 2.0, 5),))
    >>> result.passed, result.checks["forward_mode"].passed
    (True, True)
    """
    return _pair(f, "gk.from_custom_jvp", inputs, forward_mode=True)
