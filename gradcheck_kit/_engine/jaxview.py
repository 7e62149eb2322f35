"""A JAX layer seen through host arrays: pytrees flattened, arrays converted at every call.

The engine perturbs its arrays in place, which JAX arrays do not allow, so a layer whose inputs
are JAX arrays is checked on NumPy arrays (``_ground.jaxarrays``): its callables are wrapped to
take the flat leaves, build the layer's own arguments from them (JAX arrays, in the pytrees the
caller gave: dicts, tuples, lists, named tuples, registered nodes) and give back flat host
arrays. Each leaf is an input of its own, named by its path (``params['w']``, ``x[1]``); an
argument's name in ``wrt`` selects all its leaves. Outputs may be a pytree too; grad_output and
output tangents follow their structure.

Calls that carry 64-bit arrays run under ``jax_enable_x64`` (restored after).

Complex values: JAX's cotangents pair with the bilinear Re(a·b), torch's (gk's convention)
with Re(conj(a)·b), so JAX's VJP of a cotangent c is the conjugate of gk's VJP of conj(c):
backward conjugates complex grad_outputs going in and complex gradients coming out, and a
correct JAX rule (``ct * w`` for ``z * w``) passes. Tangents need no conversion.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._adapters.extras import Extras
from .._ground.backends import backend_name, is_array
from .._ground.invoke import LayerCallError
from .._ground.jaxarrays import (
    device_label,
    device_of,
    from_host,
    import_jax,
    is_jax,
    jax_module,
    needs_x64,
    to_host,
    x64,
)


def applies(inputs: Any) -> bool:
    """Whether ``inputs`` (an array, or a sequence of arrays or pytrees) hold a JAX array (none
    can where nobody imported JAX: the NumPy path pays one dictionary lookup)."""
    return is_jax(inputs) or _has_jax_leaf(inputs)


def _has_jax_leaf(inputs: Any) -> bool:
    tree_util = getattr(jax_module(), "tree_util", None)
    if tree_util is None or not isinstance(inputs, (tuple, list)):
        return False
    return any(is_jax(leaf) for leaf in tree_util.tree_leaves(list(inputs)))


@dataclass
class JaxView:
    """The pytree of each argument, where the layer's arrays live, and the outputs' structure
    (learnt from forward's first call)."""

    trees: list[Any]  # one treedef per argument of forward
    arg_names: list[str]
    names: list[str]  # one per leaf: the argument's name and the leaf's path
    owners: list[int]  # the argument each leaf belongs to
    device: Any
    out_tree: Any = None  # outputs' treedef where forward returns a pytree, not one array

    @property
    def label(self) -> str:
        where = device_label(self.device)
        return "jax" if where == "cpu" else f"jax:{where}"

    # -- the caller's arguments -----------------------------------------------------------------
    def arguments(self, leaves: Sequence[Any]) -> list[Any]:
        """Forward's arguments (pytrees of JAX arrays) from the flat host leaves."""
        jax = import_jax("a JAX layer")
        out: list[Any] = []
        start = 0
        for tree in self.trees:
            count = tree.num_leaves
            items = [self._to_jax(v) for v in leaves[start : start + count]]
            out.append(jax.tree_util.tree_unflatten(tree, items))
            start += count
        return out

    def _to_jax(self, v: Any) -> Any:
        return from_host(v, self.device) if isinstance(v, np.ndarray) else v

    def _per_argument(self, flat: Sequence[Any]) -> list[Any]:
        """Flat values (tangents, grad_grads; None where absent) as one pytree per argument
        (None for an argument with none at all)."""
        jax = import_jax("a JAX layer")
        out: list[Any] = []
        start = 0
        for tree in self.trees:
            items = [None if v is None else self._to_jax(v) for v in flat[start : start + tree.num_leaves]]
            if all(v is None for v in items):
                out.append(None)
            else:
                out.append(jax.tree_util.tree_unflatten(tree, items))
            start += tree.num_leaves
        return out

    # -- what the layer returns -------------------------------------------------------------------
    def _outputs(self, value: Any) -> Any:
        jax = import_jax("a JAX layer")
        if is_array(value):
            return _host(value, "forward", "the output")
        leaves, tree = jax.tree_util.tree_flatten(value, is_leaf=lambda v: v is None)
        if not (isinstance(value, (tuple, list, dict)) and any(is_array(v) for v in leaves)):
            return value  # not arrays: the output contract names what is wrong
        self.out_tree = tree  # grad_output and tangents come back in this structure (a 1-tuple too)
        where = [f"output {k}" for k in range(len(leaves))]
        return tuple(_host(v, "forward", w) for v, w in zip(leaves, where))

    def _grad_outputs(self, dy: Any) -> Any:
        jax = import_jax("a JAX layer")
        dys = dy if isinstance(dy, tuple) else (dy,)
        given = [None if d is None else self._to_jax(_conj(d)) for d in dys]
        if self.out_tree is not None:
            return jax.tree_util.tree_unflatten(self.out_tree, given)
        return tuple(given) if isinstance(dy, tuple) else given[0]

    def _flat_outputs(self, value: Any, what: str) -> tuple[Any, ...]:
        """Output tangents (or grad_output's gradients) in the outputs' structure, flattened."""
        if self.out_tree is not None:
            try:
                leaves = self.out_tree.flatten_up_to(value)
            except (ValueError, TypeError) as exc:
                raise LayerCallError(
                    what, f"returned values not structured as forward's outputs: {exc}"
                ) from exc
        else:
            leaves = list(value) if isinstance(value, (tuple, list)) else [value]
        return tuple(_gradient(v, what, f"output {k}") for k, v in enumerate(leaves))

    def _flat_gradients(self, grads: Any, what: str) -> list[Any]:
        """One gradient per argument (a pytree like it) as one per leaf."""
        n = len(self.trees)
        if n == 1 and not self._one_tuple(grads):
            grads = (grads,)
        if not isinstance(grads, (tuple, list)) or len(grads) != n:
            got = f"{len(grads)} gradient(s)" if isinstance(grads, (tuple, list)) else type(grads).__name__
            raise LayerCallError(
                what, f"returned {got} for {n} argument(s); return one gradient per argument, "
                "structured like it (None for one not differentiated)"
            )  # fmt: skip
        out: list[Any] = []
        for tree, name, g in zip(self.trees, self.arg_names, grads):
            out += self._leaf_gradients(tree, name, g, what)
        return out

    def _one_tuple(self, grads: Any) -> bool:
        """Whether a lone argument's gradient came as ``(g,)`` (as ``jax.vjp`` gives it) rather
        than as ``g``: told by which of the two is structured like the argument."""
        if not (isinstance(grads, (tuple, list)) and len(grads) == 1):
            return False
        tree = self.trees[0]
        if tree.num_nodes == 1:  # a lone array
            return True
        try:
            tree.flatten_up_to(grads[0])
        except (ValueError, TypeError):
            return False
        return True

    def _leaf_gradients(self, tree: Any, name: str, g: Any, what: str) -> list[Any]:
        if g is None:
            return [None] * tree.num_leaves
        try:
            leaves = tree.flatten_up_to(g)
        except (ValueError, TypeError) as exc:
            raise LayerCallError(
                what, f"returned a gradient for {name} that is not structured like it ({tree}): {exc}"
            ) from exc
        return [_gradient(v, what, f"the gradient of {name}") for v in leaves]

    # -- the layer's callables --------------------------------------------------------------------
    def forward(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def forward(*leaves: Any, **params: Any) -> Any:
            with x64(needs_x64(leaves)):
                return self._outputs(fn(*self.arguments(leaves), **params))

        return self._like(forward, fn, grad_first=False)

    def backward(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def backward(grad_output: Any, *leaves: Any, **params: Any) -> Any:
            dys = grad_output if isinstance(grad_output, tuple) else (grad_output,)
            with x64(needs_x64([*leaves, *dys])):
                grads = fn(self._grad_outputs(grad_output), *self.arguments(leaves), **params)
                return tuple(_conj(g) for g in self._flat_gradients(grads, "backward"))

        return self._like(backward, fn, grad_first=True)

    def extras(self, extras: Extras | None) -> Extras | None:
        """``extras`` taking and giving flat host arrays (vmap is JAX's own business: dropped)."""
        if extras is None:
            return None
        return extras.replace(
            jvp=None if extras.jvp is None else self._jvp(extras.jvp),
            double_backward=None if extras.double_backward is None else self._double(extras.double_backward),
            vmap_forward=None,
            vmap_backward=None,
            vmap_rule=None,
        )

    def _jvp(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def jvp(tangents: Any, *leaves: Any, **params: Any) -> Any:
            with x64(needs_x64([*leaves, *(t for t in tangents if t is not None)])):
                value = fn(self._per_argument(tangents), *self.arguments(leaves), **params)
                return self._flat_outputs(value, "jvp")

        return jvp

    def _double(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def double_backward(grad_grads: Any, grad_output: Any, *leaves: Any, **params: Any) -> Any:
            dys = grad_output if isinstance(grad_output, tuple) else (grad_output,)
            with x64(needs_x64([*leaves, *dys])):
                gg = self._per_argument(grad_grads)
                d_inputs, d_dy = fn(gg, self._grad_outputs(grad_output), *self.arguments(leaves), **params)
                return tuple(self._flat_gradients(d_inputs, "double backward")), self._flat_outputs(
                    d_dy, "double backward"
                )

        return double_backward

    def _like(self, wrapper: Callable[..., Any], fn: Callable[..., Any], *, grad_first: bool) -> Any:
        """The wrapper named like the layer, with one parameter per leaf (reports name them)."""
        P = inspect.Parameter
        first = [P("grad_output", P.POSITIONAL_ONLY)] if grad_first else []
        leaves = [P(f"leaf{k}", P.POSITIONAL_ONLY) for k in range(len(self.names))]
        wrapper.__signature__ = inspect.Signature([*first, *leaves, P("params", P.VAR_KEYWORD)])  # type: ignore[attr-defined]
        wrapper.__name__ = getattr(fn, "__name__", wrapper.__name__)
        wrapper.__qualname__ = getattr(fn, "__qualname__", wrapper.__qualname__)
        return wrapper

    def selected(self, wrt: Any) -> Any:
        """``wrt`` with each argument's name replaced by the names of its leaves."""
        if wrt is None:
            return None
        chosen = [wrt] if isinstance(wrt, (int, str)) else list(wrt)
        out: list[Any] = []
        for w in chosen:
            if isinstance(w, str) and w in self.arg_names and w not in self.names:
                k = self.arg_names.index(w)
                out += [self.names[i] for i, owner in enumerate(self.owners) if owner == k]
            else:
                out.append(w)
        return out


def _conj(v: Any) -> Any:
    """The conjugate of a complex host array (JAX's cotangent convention to gk's and back)."""
    return np.conj(v) if isinstance(v, np.ndarray) and np.iscomplexobj(v) else v


def _host(v: Any, stage: str, where: str) -> Any:
    if is_jax(v):
        return to_host(v)
    if is_array(v) and not isinstance(v, np.generic):
        raise LayerCallError(
            stage, f"returned a {backend_name(v)} array for {where}; the inputs are JAX arrays"
        )
    return v


def _gradient(v: Any, stage: str, where: str) -> Any:
    """A gradient leaf on the host; JAX's float0 (the tangent of an integer input) is None."""
    if is_jax(v) and str(v.dtype) == "float0":
        return None
    if isinstance(v, np.ndarray) and v.dtype.names == ("float0",):
        return None
    return _host(v, stage, where)


def build(inputs: Any, arg_names: Sequence[str]) -> tuple[JaxView, list[Any]]:
    """The view of ``inputs`` (a JAX array, or a sequence of arrays and pytrees of them) and the
    flat host leaves; ``arg_names``: forward's positional parameters (input{k} past them)."""
    jax = import_jax("JAX inputs")
    args = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    names = [arg_names[k] if k < len(arg_names) else f"input{k}" for k in range(len(args))]
    if len(set(names)) != len(names):
        names = [f"input{k}" for k in range(len(args))]
    trees, leaf_names, owners, host = [], [], [], []
    device = None
    for k, arg in enumerate(args):
        pairs, tree = jax.tree_util.tree_flatten_with_path(arg)
        trees.append(tree)
        for path, leaf in pairs:
            leaf_names.append(names[k] + jax.tree_util.keystr(path))
            owners.append(k)
            if is_jax(leaf):
                device = device if device is not None else device_of(leaf)
                host.append(np.array(to_host(leaf), copy=True))  # ours: the engine writes into it
            else:
                host.append(leaf)
    view = JaxView(trees, names, leaf_names, owners, device)
    return view, host
