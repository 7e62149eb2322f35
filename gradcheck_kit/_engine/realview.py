"""A complex layer seen as a real one, so the whole engine applies unchanged.

Each complex array becomes its (real, imaginary) pairs on a new last axis of 2 (torch's
``view_as_real``; NumPy and CuPy stack ``z.real`` and ``z.imag``). In torch's convention the
gradient of a complex input is grad_output times the *conjugate* derivative, summed: for
y = z·w, grad_z = grad·conj(w). That is exactly the real gradient of the real view:

    F = Σ Re(conj(g)·y) = Σ (g_re·y_re + g_im·y_im) = <view(g), view(y)>,
    ∂F/∂z_re + i ∂F/∂z_im = g·conj(w)   (for y = z·w),

so the real view of grad_z is the real gradient of F w.r.t. the real view of z, and finite
differences along the real and imaginary parts judge it. A forgotten ``conj`` then shows as
the conjugate of the right gradient (its imaginary half's sign flipped), or as the conjugate of
the right gradient for conj(grad_output) (``grad * w`` for ``grad * w.conj()``): the diagnosis
names it ``conj_missing``. A real input with complex outputs (an FFT) is wrapped the same way.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._adapters.extras import Extras
from .._ground.backends import backend_name, dtype_name, is_array, is_complex

COMPLEX_OF = {"float32": "complex64", "float64": "complex128", "float16": "complex32"}


def to_real(z: Any) -> Any:
    """(real, imaginary) pairs on a new last axis: a view where the library has one."""
    if backend_name(z) == "torch":
        return sys.modules["torch"].view_as_real(z.resolve_conj())
    xp = sys.modules["cupy"] if backend_name(z) == "cupy" else np
    return xp.stack((z.real, z.imag), axis=-1)


def to_complex(r: Any) -> Any:
    """The complex array whose (real, imaginary) pairs ``r`` holds on its last axis: a view of
    ``r`` where its memory allows (writes through it reach ``r``, where the contracts see them)."""
    if backend_name(r) == "torch":
        torch = sys.modules["torch"]
        try:
            return torch.view_as_complex(r)
        except RuntimeError:  # strides that no complex view has
            return torch.view_as_complex(r.contiguous())
    complex_dtype = COMPLEX_OF.get(dtype_name(r), "complex128")
    try:
        return r.view(complex_dtype)[..., 0]
    except (ValueError, TypeError):
        return (r[..., 0] + 1j * r[..., 1]).astype(complex_dtype)


@dataclass
class RealView:
    """Which inputs are complex, which outputs are (learnt from forward's first call), and the
    layer's callables wrapped to take and give real pairs."""

    inputs: frozenset[int]
    dtypes: dict[int, str] = field(default_factory=dict)  # each complex input's dtype (reports)
    outputs: tuple[bool, ...] = ()  # which of forward's outputs are complex

    def real_inputs(self, values: Sequence[Any]) -> list[Any]:
        return [to_real(x) if k in self.inputs else x for k, x in enumerate(values)]

    def _complex_inputs(self, values: Sequence[Any]) -> list[Any]:
        return [to_complex(x) if k in self.inputs and is_array(x) else x for k, x in enumerate(values)]

    def _real_outputs(self, value: Any) -> Any:
        outs = value if isinstance(value, tuple) else (value,)
        self.outputs = tuple(is_array(o) and is_complex(o) for o in outs)
        real = tuple(to_real(o) if c else o for o, c in zip(outs, self.outputs))
        return real if isinstance(value, tuple) else real[0]

    def _complex_grad_outputs(self, dy: Any) -> Any:
        dys = dy if isinstance(dy, tuple) else (dy,)
        flags = self.outputs or (False,) * len(dys)
        out = tuple(to_complex(d) if c and d is not None else d for d, c in zip(dys, flags))
        return out if isinstance(dy, tuple) else out[0]

    def _real_gradients(self, grads: Any, n: int, what: str) -> Any:
        single = n == 1 and not isinstance(grads, (tuple, list))
        items = (grads,) if single else grads
        if not isinstance(items, (tuple, list)):
            return grads  # the gradient contract names what is wrong
        out = [self._real_gradient(g, k, what) for k, g in enumerate(items)]
        return out[0] if single else type(items)(out)

    def _real_gradient(self, g: Any, k: int, what: str) -> Any:
        if k not in self.inputs or g is None or not is_array(g):
            return g
        if not is_complex(g):
            raise TypeError(
                f"{what} returned a {dtype_name(g)} gradient for complex input {k}: a complex input's "
                "gradient is complex (torch's convention: grad_output times the conjugate derivative)"
            )
        return to_real(g)

    # -- the layer's callables ----------------------------------------------------------------------
    def forward(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def forward(*inputs: Any, **params: Any) -> Any:
            return self._real_outputs(fn(*self._complex_inputs(inputs), **params))

        return _like(forward, fn)

    def backward(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def backward(grad_output: Any, *inputs: Any, **params: Any) -> Any:
            grads = fn(self._complex_grad_outputs(grad_output), *self._complex_inputs(inputs), **params)
            return self._real_gradients(grads, len(inputs), "backward")

        return _like(backward, fn)

    def extras(self, extras: Extras | None) -> Extras | None:
        """``extras`` with every callable taking and giving real pairs."""
        if extras is None:
            return None
        return extras.replace(
            jvp=_maybe(self._jvp, extras.jvp),
            double_backward=_maybe(self._double_backward, extras.double_backward),
            vmap_forward=_maybe(self._vmap_forward, extras.vmap_forward),
            vmap_backward=_maybe(self._vmap_backward, extras.vmap_backward),
        )

    def _jvp(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def jvp(tangents: Any, *inputs: Any, **params: Any) -> Any:
            value = fn(self._complex_inputs(tangents), *self._complex_inputs(inputs), **params)
            outs = value if isinstance(value, tuple) else (value,)
            return tuple(to_real(o) if is_array(o) and is_complex(o) else o for o in outs)

        return jvp

    def _double_backward(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def double_backward(grad_grads: Any, grad_output: Any, *inputs: Any, **params: Any) -> Any:
            dy = self._complex_grad_outputs(grad_output)
            d_inputs, d_dy = fn(self._complex_inputs(grad_grads), dy, *self._complex_inputs(inputs), **params)
            flags = self.outputs or (False,) * len(d_dy)
            real_dy = tuple(to_real(g) if c and g is not None else g for g, c in zip(d_dy, flags))
            return self._real_gradients(tuple(d_inputs), len(inputs), "double backward"), real_dy

        return double_backward

    def _vmap_forward(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def vmap_forward(inputs: Any, batched: Any, **params: Any) -> Any:
            return self._real_outputs(tuple(fn(self._complex_inputs(inputs), batched, **params)))

        return vmap_forward

    def _vmap_backward(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def vmap_backward(grad_output: Any, *inputs: Any, **params: Any) -> Any:
            grads = fn(self._complex_grad_outputs(grad_output), *self._complex_inputs(inputs), **params)
            return self._real_gradients(tuple(grads), len(inputs), "backward under vmap")

        return vmap_backward


def _maybe(wrap: Callable[[Callable[..., Any]], Callable[..., Any]], fn: Callable[..., Any] | None) -> Any:
    return None if fn is None else wrap(fn)


def _like(wrapper: Callable[..., Any], fn: Callable[..., Any]) -> Callable[..., Any]:
    """The wrapper under the layer's name and signature (reports name the inputs from it)."""
    with contextlib.suppress(TypeError, ValueError):  # a builtin without a signature
        wrapper.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    wrapper.__name__ = getattr(fn, "__name__", wrapper.__name__)
    wrapper.__qualname__ = getattr(fn, "__qualname__", wrapper.__qualname__)
    return wrapper


def complex_positions(inputs: Sequence[Any]) -> frozenset[int]:
    return frozenset(k for k, x in enumerate(inputs) if is_array(x) and is_complex(x))
