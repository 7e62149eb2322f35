"""Adapters from the other ways people write layers to gk.check's functional pair.

* ``from_cache_style``: ``forward(*inputs, **params) -> (out, cache)`` and
  ``backward(dout, cache) -> grads`` (CS231n).
* ``from_layer_object``: stateful objects, ``layer.forward(A)`` then ``layer.backward(dLdZ)``
  returning dLdA and setting gradient attributes such as ``layer.dLdW`` (mytorch).
* ``from_autograd_function``: ``torch.autograd.Function`` subclasses.

Each returns a ``LayerFunctions`` (forward, backward) pair, so ``gk.check(*pair, inputs)`` and
``gk.register(name, *pair, cases=...)`` work. Wrappers carry the input names in their signature.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import InvalidArgument
from ..registry import positional_names
from .extras import EXTRAS_ATTRIBUTE


class LayerFunctions(NamedTuple):
    """A layer as ``gk.check``'s (forward, backward) pair; the ``from_*`` adapters return one.

    Unpack it into ``gk.check(*pair, inputs)`` or ``gk.register(name, *pair, cases=...)``.

    Attributes
    ----------
    forward : callable
        ``forward(*inputs, **params)``; its signature names the inputs.
    backward : callable
        ``backward(grad_output, *inputs, **params)`` returning one gradient per input.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> pair = gk.LayerFunctions(np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),))
    >>> gk.check(*pair, (np.linspace(-1.0, 1.0, 5),)).passed
    True
    """

    forward: Callable[..., Any]
    backward: Callable[..., Any]


def _named(
    fn: Callable[..., Any], names: Sequence[str], *, grad_first: bool, label: str
) -> Callable[..., Any]:
    """Give a ``*args`` wrapper a real signature so reports name the inputs."""
    P = inspect.Parameter
    params = [P(n, P.POSITIONAL_OR_KEYWORD) for n in ((["grad_output"] if grad_first else []) + list(names))]
    rest = next(n for n in ("params", "options", "keywords", "_params") if n not in names)  # JAX's params
    fn.__signature__ = inspect.Signature([*params, P(rest, P.VAR_KEYWORD)])  # type: ignore[attr-defined]
    fn.__qualname__ = fn.__name__ = label
    return fn


def from_cache_style(forward: Callable[..., Any], backward: Callable[..., Any]) -> LayerFunctions:
    """Adapt a CS231n-style pair: ``forward -> (out, cache)``, ``backward(dout, cache) -> grads``.

    The adapted backward re-runs forward on the inputs it is given to rebuild the cache, so the
    pair is stateless. A forward that does not return ``(out, cache)`` raises ``TypeError``
    when called (in ``gk.check``: an ``exception`` finding).

    Parameters
    ----------
    forward : callable
        ``forward(*inputs, **params)`` returning ``(out, cache)``; its positional parameters
        name the inputs.
    backward : callable
        ``backward(dout, cache)`` returning the gradients (one array for a single input).

    Returns
    -------
    LayerFunctions
        The functional pair, with forward's input names in both signatures.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> def affine_forward(x, w, b):
    ...     return x @ w + b, (x, w, b)
    >>> def affine_backward(dout, cache):
    ...     x, w, b = cache
    ...     return dout @ w.T, x.T @ dout, dout.sum(axis=0)
    >>> rng = np.random.default_rng(0)
    >>> x, w, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)
    >>> gk.check(*gk.from_cache_style(affine_forward, affine_backward), (x, w, b)).passed
    True
    """
    names = positional_names(forward)

    def fwd(*inputs: Any, **params: Any) -> Any:
        return _split_cache(forward(*inputs, **params))[0]

    def bwd(grad_output: Any, *inputs: Any, **params: Any) -> Any:
        _, cache = _split_cache(forward(*inputs, **params))
        grads = backward(grad_output, cache)
        return grads if isinstance(grads, (tuple, list)) or len(inputs) != 1 else (grads,)

    label = getattr(forward, "__name__", "layer")
    return LayerFunctions(
        _named(fwd, names, grad_first=False, label=label),
        _named(bwd, names, grad_first=True, label=f"{label}.backward"),
    )


def _split_cache(value: Any) -> tuple[Any, Any]:
    if not isinstance(value, tuple) or len(value) != 2:
        raise TypeError(f"a cache-style forward must return (out, cache); it returned {type(value).__name__}")
    return value[0], value[1]


class LayerObjectFunctions(LayerFunctions):
    """The (forward, backward) pair of a layer object, plus what the adapter found on it.

    Check every parameter with ``gk.check(*pair, (A, *pair.weights))``.

    Attributes
    ----------
    forward : callable
        ``forward(*inputs, *weights, **params)``.
    backward : callable
        ``backward(grad_output, *inputs, *weights, **params)``: dL/dinputs, then the weights'
        gradients.
    weights : tuple of arrays
        Copies of the layer's current weight arrays, in the pair's order.
    weight_paths : tuple of str
        Where each weight lives: ``W``, ``conv1d_stride1.W``, ``layers[0].W``.
    gradient_paths : tuple of str or None
        Where backward leaves each weight's gradient (None: looked up after backward).
    input_names : tuple of str
        The layer's inputs (forward's required positional parameters).

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> class Scale:  # mytorch style: backward returns dLdA and accumulates dLdW
    ...     def __init__(self):
    ...         self.W, self.dLdW = np.linspace(0.5, 1.5, 3), np.zeros(3)
    ...     def forward(self, A):
    ...         self.A = A
    ...         return A * self.W
    ...     def backward(self, dLdZ):
    ...         self.dLdW += (dLdZ * self.A).sum(axis=0)
    ...         return dLdZ * self.W
    >>> pair = gk.from_layer_object(Scale())
    >>> pair.input_names, pair.weight_paths, pair.gradient_paths
    (('A',), ('W',), ('dLdW',))
    """

    weights: tuple[Any, ...]
    weight_paths: tuple[str, ...]
    gradient_paths: tuple[str | None, ...]
    input_names: tuple[str, ...]

    def describe(self) -> str:
        """Where the weights and their gradients were found, in one line.

        Returns
        -------
        str
            Such as ``weights: conv1d_stride1.W (gradient conv1d_stride1.dLdW), ...``.
        """
        parts = [
            f"{path} (gradient {grad or 'looked up after backward'})"
            for path, grad in zip(self.weight_paths, self.gradient_paths)
        ]
        return "weights: " + (", ".join(parts) if parts else "none found")


def from_layer_object(
    layer: Any,
    weights: Mapping[str, str] | Sequence[str] | None = None,
    *,
    inputs: Sequence[str] | None = None,
    forward: str = "forward",
    backward: str = "backward",
) -> LayerObjectFunctions:
    """Adapt a stateful layer object (mytorch style) to a functional pair.

    The layer is used the way a training framework uses it: ``layer.forward(A)``, then
    ``layer.backward(dLdZ)`` returning dLdA and leaving gradient attributes such as
    ``layer.dLdW``; every call runs on a fresh copy of ``layer`` (the caller's object is never
    changed), with its gradient attributes zeroed before backward and copied after. The pair
    takes ``(*inputs, *weights)``: check it with ``gk.check(*pair, (A, *pair.weights))``;
    weights left out are not differentiated. Keyword params reach forward (``{"eval": True}``),
    and backward where it accepts them by name.

    Parameters
    ----------
    layer : object
        The layer, with callable ``forward`` and ``backward`` methods.
    weights : mapping of str to str, or sequence of str, optional
        Weight attributes mapped to their gradient attributes (``{"W": "dLdW"}``); a list of
        names looks the gradients up (``dLd<name>``, ``d<name>``, ``grad_<name>``,
        ``<name>_grad``). None finds the weights: float arrays with such a gradient attribute
        beside them, on the layer or one level down (``self.conv1d_stride1.W``), else the
        conventionally named ones (W, b, weight, bias, gamma, beta).
    inputs : sequence of str, optional
        The inputs' names (default: forward's required positional parameters).
    forward : str, default "forward"
        The name of the forward method.
    backward : str, default "backward"
        The name of the backward method.

    Returns
    -------
    LayerObjectFunctions
        The pair, with ``weights`` and where they were found (``pair.describe()``).

    Raises
    ------
    InvalidArgument
        When ``layer`` lacks a callable ``forward`` or ``backward``, or ``weights`` names an
        attribute the layer does not have, or has in several places.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> class Scale:  # mytorch style: backward returns dLdA and accumulates dLdW
    ...     def __init__(self):
    ...         self.W, self.dLdW = np.linspace(0.5, 1.5, 3), np.zeros(3)
    ...     def forward(self, A):
    ...         self.A = A
    ...         return A * self.W
    ...     def backward(self, dLdZ):
    ...         self.dLdW += (dLdZ * self.A).sum(axis=0)
    ...         return dLdZ * self.W
    >>> pair = gk.from_layer_object(Scale())
    >>> pair.describe()
    'weights: W (gradient dLdW)'
    >>> gk.check(*pair, (np.ones((2, 3)), *pair.weights)).passed
    True
    """
    from . import layer_object as lo

    for method in (forward, backward):
        if not callable(getattr(layer, method, None)):
            raise InvalidArgument(f"layer {type(layer).__name__} has no callable {method!r}")
    found = lo.discover(layer) if weights is None else lo.from_mapping(layer, weights)
    names = tuple(inputs) if inputs is not None else lo.required_inputs(getattr(layer, forward))
    calls = lo.Calls(layer, found, len(names), forward, backward)

    def fwd(*args: Any, **params: Any) -> Any:
        return calls.forward(*args, **params)

    def bwd(grad_output: Any, *args: Any, **params: Any) -> Any:
        return calls.backward(grad_output, *args, **params)

    label = type(layer).__name__
    all_names = [*names, *(w.name for w in found)]
    pair = LayerObjectFunctions(
        _named(fwd, all_names, grad_first=False, label=label),
        _named(bwd, all_names, grad_first=True, label=f"{label}.backward"),
    )
    pair.weights = tuple(copy.deepcopy(lo.resolve(layer, w.path)) for w in found)
    pair.weight_paths = tuple(w.path for w in found)
    pair.gradient_paths = tuple(w.gradient for w in found)
    pair.input_names = names
    return pair


def from_autograd_function(function: Any, *, inputs: Sequence[str] | None = None) -> LayerFunctions:
    """Wrap a ``torch.autograd.Function`` subclass as a (forward, backward) pair for ``gk.check``.

    Forward is ``function.apply`` (without autograd), backward is autograd's vector-Jacobian
    product through the Function's own ``backward``. ``gk.check`` then also checks what the
    Function offers beyond that, each as a named part of the result (``result.checks``):

    * ``second_order``: backward as a function of (inputs, grad_output) is itself checked, its
      VJP (autograd through ``backward``, ``create_graph=True``) against finite differences of
      backward; unless backward is ``@once_differentiable`` (``gk.check(..., order=1)`` skips
      it, ``order=2`` insists);
    * ``forward_mode``: a ``jvp`` staticmethod, against finite differences along random
      tangents and against backward by the dot-product test <u, J v> = <J^T u, v>;
    * ``batched``: with ``generate_vmap_rule = True`` or a ``vmap`` staticmethod, forward and
      backward under ``torch.func.vmap`` against the loop over the batch;
    * ``undefined_grad``: with several outputs, backward with each output's gradient left
      undefined (None under ``ctx.set_materialize_grads(False)``) against that gradient zero.

    Params go to forward's parameters of the same name, wherever they stand in its signature
    (``forward(ctx, x, k, w)`` with inputs ``(x, w)`` and ``{"k": 3}``); the inputs fill the
    others in order. A Function that writes into an argument and declares it with
    ``ctx.mark_dirty`` is called on fresh copies. Complex inputs and outputs follow torch's
    convention (the gradient is grad_output times the conjugate derivative).

    Parameters
    ----------
    function : type
        A ``torch.autograd.Function`` subclass (old style with ``ctx`` first in forward, or
        with ``setup_context``).
    inputs : sequence of str, optional
        The inputs' names (default: forward's parameter names, without those given as params).

    Returns
    -------
    LayerFunctions
        The pair; its forward carries the Function's other capabilities for ``gk.check``.

    Raises
    ------
    InvalidArgument
        When ``function`` is not a ``torch.autograd.Function`` subclass.

    Examples
    --------
    >>> import torch, gradcheck_kit as gk
    >>> class Cube(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x**3
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return 3 * x**2 * grad
    >>> result = gk.check(*gk.from_autograd_function(Cube), (torch.linspace(-1, 1, 5, dtype=torch.float64),))
    >>> result.passed, list(result.checks), result.checks["second_order"].passed
    (True, ['second_order'], True)
    """
    from . import autograd

    autograd.check_function(function)
    calls = autograd.FunctionCalls(function)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = list(inputs) if inputs is not None else [p.name for p in calls.parameters if p.kind in positional]

    def fwd(*args: Any, **params: Any) -> Any:
        return calls.forward(args, params)

    def bwd(grad_output: Any, *args: Any, **params: Any) -> Any:
        return autograd.vjp(calls, grad_output, args, params)

    forward = _named(fwd, names, grad_first=False, label=calls.label)
    setattr(forward, EXTRAS_ATTRIBUTE, autograd.function_extras(function, calls))
    return LayerFunctions(forward, _named(bwd, names, grad_first=True, label=f"{calls.label}.backward"))
