"""What a layer offers beyond forward and backward, for the checks that compose ``gk.check``.

An adapter (``from_autograd_function``) or the caller (``gk.check(..., jvp=...)``) hands these
over; each callable follows forward's conventions (inputs positional, params as keywords) and
works on the layer's own arrays:

* ``jvp(tangents, *inputs, **params)``: forward mode, the output tangents J·v for one tangent
  per input (None for an input not moved);
* ``double_backward(grad_grads, grad_output, *inputs, **params)``: the vector-Jacobian product
  of backward seen as a function of (inputs, grad_output), for ``grad_grads`` (one per input,
  None where backward's gradient is not differentiated): ``(d inputs, d grad_outputs)``;
* ``vmap_forward(inputs, batched, **params)``: forward under a vectorizing map over the leading
  axis of the inputs flagged in ``batched``;
* ``vmap_backward(grad_outputs, *inputs, **params)``: backward under a vectorizing map over the
  leading axis of every grad_output (one gradient per input, batched);
* ``differentiate(positions)``: told, as each check is planned, which inputs it differentiates
  (``wrt``): a torch.autograd.Function sees the others as not requiring grad, so that
  ``ctx.needs_input_grad`` says what real use would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EXTRAS_ATTRIBUTE = "gradcheck_extras"  # where an adapter's forward carries its Extras


@dataclass(frozen=True)
class Extras:
    """A layer's capabilities beyond (forward, backward); None where it has none."""

    jvp: Callable[..., Any] | None = None
    double_backward: Callable[..., Any] | None = None
    # why backward cannot be differentiated (once_differentiable), None where it may be
    not_twice_differentiable: str | None = None
    vmap_forward: Callable[..., Any] | None = None
    vmap_backward: Callable[..., Any] | None = None
    vmap_rule: str | None = None  # how the layer supports vmap, in words
    undefined_grads: bool = False  # backward takes None for a grad_output nobody used
    differentiate: Callable[[frozenset[int]], None] | None = None  # the inputs a check differentiates
    # whether order=None checks the second order where there is a double backward (JAX's
    # rules: only when asked for, order=2)
    second_order_by_default: bool = True
    origin: str = "layer"  # what offers them, for messages ("torch.autograd.Function Foo")

    def replace(self, **changes: Any) -> Extras:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def extras_of(forward: Callable[..., Any]) -> Extras | None:
    """The Extras an adapter attached to its forward, if any."""
    found = getattr(forward, EXTRAS_ATTRIBUTE, None)
    return found if isinstance(found, Extras) else None
