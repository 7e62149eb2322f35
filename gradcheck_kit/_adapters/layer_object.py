"""Stateful layer objects (mytorch style) checked the way a training framework uses them.

A framework calls ``layer.forward(A)`` then ``layer.backward(dLdZ)`` on one object, zeroes the
gradient attributes between steps (``zero_grads()``: layers may accumulate, ``self.dLdW += ...``)
and reads ``layer.dLdW`` after backward. The adapter does the same on a fresh copy of the
caller's object for every call, so the caller's object (weights, running statistics, every
attribute) is never touched, no call sees another's state, and the gradients handed back are
copies, not the layer's live buffers.

Weights are found where courses put them: on the layer or one level down, on a member object
(``self.conv1d_stride1.W``) or in a list of them (``self.layers[0].W``), each with its gradient
attribute from either naming family (``dLdW``/``dLdb`` or ``dW``/``db``, also ``grad_W``,
``W_grad``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgument

GRADIENT_NAMES = ("dLd{}", "d{}", "grad_{}", "{}_grad")  # the families, in the order tried
# weights without a gradient attribute before the first backward (mytorch's Linear sets dLdW there)
CONVENTIONAL_WEIGHTS = ("W", "b", "weight", "bias", "gamma", "beta")


@dataclass(frozen=True)
class Weight:
    """One weight of a layer object: where it lives and where backward leaves its gradient."""

    name: str  # the input name in reports (the attribute's, prefixed by its owner where ambiguous)
    path: str  # ``W`` or ``conv1d_stride1.W`` or ``layers[0].W``
    gradient: str | None  # the gradient attribute's path; None: looked up after backward

    @property
    def owner(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def attribute(self) -> str:
        return self.path.rpartition(".")[2]


# -- paths -----------------------------------------------------------------------------------------


def _members(layer: Any) -> Iterator[tuple[str, Any]]:
    """("", layer) and every member object one level down, with its path."""
    yield "", layer
    for name, value in sorted(_attributes(layer).items()):
        if _is_layer_like(value):
            yield name, value
        elif isinstance(value, (list, tuple)):
            for k, item in enumerate(value):
                if _is_layer_like(item):
                    yield f"{name}[{k}]", item


def _attributes(obj: Any) -> dict[str, Any]:
    return dict(getattr(obj, "__dict__", {}))


def _is_layer_like(value: Any) -> bool:
    from .._ground.backends import is_array

    return (
        hasattr(value, "__dict__")
        and not is_array(value)
        and not inspect.isroutine(value)
        and not inspect.isclass(value)
        and not inspect.ismodule(value)
    )


def resolve(root: Any, path: str) -> Any:
    """The object at ``path`` (``a.b``, ``a[0].b``) below ``root``; AttributeError if absent."""
    obj = root
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        obj = obj[int(part[1:-1])] if part.startswith("[") else getattr(obj, part)
    return obj


def _owner_of(root: Any, path: str) -> Any:
    owner = path.rpartition(".")[0]
    return resolve(root, owner) if owner else root


def _join(owner: str, attribute: str) -> str:
    return f"{owner}.{attribute}" if owner else attribute


def _exists(root: Any, path: str) -> bool:
    try:
        resolve(root, path)
    except (AttributeError, IndexError, KeyError, TypeError):
        return False
    return True


# -- discovery ---------------------------------------------------------------------------------


def _float_arrays(obj: Any) -> dict[str, Any]:
    from .._ground.backends import is_array, is_floating

    return {k: v for k, v in _attributes(obj).items() if is_array(v) and is_floating(v) and v.ndim >= 1}


def _partner(obj: Any, attribute: str, value: Any) -> str | None:
    """The gradient attribute next to ``attribute`` (same shape), if the layer already has one."""
    for pattern in GRADIENT_NAMES:
        candidate = _attributes(obj).get(pattern.format(attribute))
        if candidate is not None and tuple(getattr(candidate, "shape", ())) == tuple(value.shape):
            return pattern.format(attribute)
    return None


def discover(layer: Any) -> list[Weight]:
    """Weights of ``layer``: float arrays that have a gradient attribute beside them, or, where
    none does yet, the conventionally named ones (their gradient is looked up after backward)."""
    paired, conventional = [], []
    gradients = {
        _join(owner, p)
        for owner, obj in _members(layer)
        for name, value in _float_arrays(obj).items()
        if (p := _partner(obj, name, value))
    }
    for owner, obj in _members(layer):
        for name, value in _float_arrays(obj).items():
            path = _join(owner, name)
            if path in gradients:
                continue
            partner = _partner(obj, name, value)
            if partner is not None:
                paired.append((path, _join(owner, partner)))
            elif name in CONVENTIONAL_WEIGHTS:
                conventional.append((path, None))
    return _named(paired or conventional)


def _named(found: Sequence[tuple[str, str | None]]) -> list[Weight]:
    """Report names: the attribute's own where unique, else the path spelled as an identifier."""
    short = [path.rpartition(".")[2] for path, _ in found]
    weights = []
    for (path, gradient), name in zip(found, short):
        unique = short.count(name) == 1
        label = name if unique else path.replace("[", "_").replace("]", "").replace(".", "_")
        weights.append(Weight(label, path, gradient))
    return weights


def from_mapping(layer: Any, weights: Mapping[str, str] | Sequence[str]) -> list[Weight]:
    """Weights named by the caller (``{"W": "dLdW"}``, ``["W", "b"]`` or dotted paths); a name
    missing on the layer is looked for one level down."""
    pairs = dict(weights) if isinstance(weights, Mapping) else {w: "" for w in weights}
    found = []
    for name, gradient in pairs.items():
        path = _locate(layer, name)
        owner = path.rpartition(".")[0]
        found.append((path, _join(owner, gradient) if gradient and "." not in gradient else gradient or None))
    return _named(found)


def _locate(layer: Any, name: str) -> str:
    if _exists(layer, name):
        return name
    hits = [_join(owner, name) for owner, obj in _members(layer) if owner and name in _attributes(obj)]
    if len(hits) == 1:
        return hits[0]
    kind = type(layer).__name__
    if hits:
        raise InvalidArgument(f"weights names {name!r}, which {kind} has in several places: {hits}; name one")
    candidates = [_join(o, n) for o, obj in _members(layer) for n in _float_arrays(obj)]
    raise InvalidArgument(
        f"weights names {name!r}, which {kind} does not have (nor its member objects); "
        f"float arrays found: {candidates or 'none'}"
    )


def gradient_of(obj: Any, weight: Weight) -> Any:
    """The gradient backward left for ``weight`` on ``obj`` (a fresh copy of the layer)."""
    if weight.gradient is not None:
        return resolve(obj, weight.gradient)
    owner = _owner_of(obj, weight.path)
    tried = [p.format(weight.attribute) for p in GRADIENT_NAMES]
    for name in tried:
        if name in _attributes(owner):
            return getattr(owner, name)
    where = f"{type(obj).__name__}.{weight.owner}" if weight.owner else type(obj).__name__
    raise AttributeError(f"{where}.backward set none of {tried} for weight {weight.path!r}")


# -- the calls ---------------------------------------------------------------------------------


class Fresh:
    """A fresh copy of the caller's layer for every call (its own object is never touched); a
    layer that cannot be deep-copied is used itself, with every attribute restored afterwards."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        try:
            copy.deepcopy(layer)
            self.copies = True
        except Exception:  # locks, open files, C handles: fall back to snapshots
            self.copies = False

    def __call__(self, use: Callable[[Any], Any]) -> Any:
        if self.copies:
            return use(copy.deepcopy(self.layer))
        saved = {owner: _snapshot(obj) for owner, obj in _members(self.layer)}
        try:
            return use(self.layer)
        finally:
            for owner, state in saved.items():
                _restore(resolve(self.layer, owner) if owner else self.layer, state)


def _snapshot(obj: Any) -> dict[str, Any]:
    from .._ground.backends import is_array

    return {k: (copy.copy(v) if is_array(v) else v) for k, v in _attributes(obj).items()}


def _restore(obj: Any, state: dict[str, Any]) -> None:
    for name in set(_attributes(obj)) - set(state):
        delattr(obj, name)
    for name, value in state.items():
        setattr(obj, name, value)


def load_weights(obj: Any, weights: Sequence[Weight], values: Sequence[Any]) -> None:
    """Bind the given arrays in place of the layer's weights (and of every alias of them)."""
    for weight, value in zip(weights, values):
        old = resolve(obj, weight.path)
        for _, member in _members(obj):
            for name, current in _attributes(member).items():
                if current is old:
                    setattr(member, name, value)
        setattr(_owner_of(obj, weight.path), weight.attribute, value)


def zero_gradients(obj: Any, weights: Sequence[Weight]) -> None:
    """What ``zero_grads()`` does between training steps: existing gradient attributes become 0."""
    for weight in weights:
        owner = _owner_of(obj, weight.path)
        names = [weight.gradient.rpartition(".")[2]] if weight.gradient else []
        names += [p.format(weight.attribute) for p in GRADIENT_NAMES]
        for name in dict.fromkeys(names):
            value = _attributes(owner).get(name)
            if value is not None and hasattr(value, "shape"):
                value[...] = 0


def accepted(method: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword params ``method`` takes by name (all of them where it has ``**kwargs``)."""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return dict(params)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return dict(params)
    return {k: v for k, v in params.items() if k in signature.parameters}


def takes_grad_output(method: Callable[..., Any]) -> bool:
    """False for ``backward(self)`` returning dA/dZ element-wise (some course years' activations)."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in kinds or p.kind is p.VAR_POSITIONAL for p in parameters)


def required_inputs(method: Callable[..., Any]) -> tuple[str, ...]:
    """forward's required positional parameters: its inputs (defaults are modes, like eval)."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return ("A",)
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = tuple(p.name for p in parameters if p.kind in kinds and p.default is p.empty)
    return names or ("A",)


class Calls:
    """forward and backward of the functional pair, each on a fresh copy of the layer."""

    def __init__(self, layer: Any, weights: Sequence[Weight], n_inputs: int, forward: str, backward: str):
        self.fresh, self.weights, self.n = Fresh(layer), list(weights), n_inputs
        self.forward_name, self.backward_name = forward, backward

    def forward(self, *args: Any, **params: Any) -> Any:
        return self.fresh(lambda obj: self._forward_on(obj, args, params))

    def backward(self, grad_output: Any, *args: Any, **params: Any) -> Any:
        return self.fresh(lambda obj: self._backward_on(obj, grad_output, args, params))

    def _given(self, args: Sequence[Any]) -> list[Weight]:
        """The weights the caller passed (after the inputs); the rest keep the layer's values."""
        if len(args) > self.n + len(self.weights):
            names = [w.path for w in self.weights]
            raise TypeError(f"got {len(args)} arrays for {self.n} input(s) and the weights {names}")
        return self.weights[: len(args) - self.n]

    def _forward_on(self, obj: Any, args: Sequence[Any], params: Mapping[str, Any]) -> Any:
        load_weights(obj, self._given(args), args[self.n :])
        return getattr(obj, self.forward_name)(*args[: self.n], **params)

    def _backward_on(self, obj: Any, grad_output: Any, args: Sequence[Any], params: Mapping[str, Any]) -> Any:
        self._forward_on(obj, args, params)
        zero_gradients(obj, self.weights)
        method = getattr(obj, self.backward_name)
        extra = accepted(method, params)
        if takes_grad_output(method):
            d_inputs = method(grad_output, **extra)
        else:  # backward() returns dA/dZ element-wise: the chain rule is the caller's job
            d_inputs = grad_output * method(**extra)
        # one array for several inputs (mytorch's loss.backward() -> dLdA for forward(A, Y)):
        # the first input's; the others (labels, masks) are not differentiated
        if not isinstance(d_inputs, (tuple, list)):
            d_inputs = (d_inputs, *[None] * (min(self.n, len(args)) - 1))
        weight_grads = [gradient_of(obj, w) for w in self._given(args)]
        return tuple(_copied(g) for g in (*d_inputs[: self.n], *weight_grads))


def _copied(value: Any) -> Any:
    """A copy of an array the layer keeps using (``self.dLdW``, ``self.dLdA``); others as they are."""
    from .._ground.backends import is_array

    return copy.copy(value) if is_array(value) else value
