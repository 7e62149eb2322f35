"""The layer under check, how it is called, and what its first calls returned.

``LayerCalls`` is the one way the engine calls the layer: every call counted, every exception a
``LayerCallError``, every return value normalised. ``Observed`` is what the contract stages saw
(the caller's inputs copied, the outputs, grad_output, backward's first gradients): the gradient
check starts from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._ground.backends import Backend
from .._ground.invoke import call, gradients_of, normalize_gradient, outputs_of
from .plan import Plan


@dataclass
class LayerCalls:
    """Calls of ``plan``'s forward and backward on ``backend``, counted per stage in ``counter``."""

    plan: Plan
    backend: Backend
    counter: Counter[str] = field(default_factory=Counter)

    def forward(self, inputs: Sequence[Any], stage: str = "forward") -> tuple[Any, ...]:
        """forward(*inputs, **params) as a tuple of arrays (LayerCallError if it is not one)."""
        value = call(self.plan.forward, inputs, self.plan.params, stage, self.counter)
        return outputs_of(value, self.backend.name)

    def backward(self, dy: Sequence[Any], inputs: Sequence[Any]) -> list[Any]:
        """backward(grad_output, *inputs, **params) as one entry per input; a Python number
        for a 0-d input becomes a 0-d array of its dtype."""
        grad_output = dy[0] if len(dy) == 1 else tuple(dy)
        raw = call(self.plan.backward, [grad_output, *inputs], self.plan.params, "backward", self.counter)
        grads = gradients_of(raw, len(inputs))
        return [normalize_gradient(self.backend, g, x) for g, x in zip(grads, inputs)]

    def copies(self, arrays: Sequence[Any]) -> list[Any]:
        """Fresh copies of the backend's arrays (anything else as it is)."""
        return self.backend.copies(arrays)


@dataclass(kw_only=True)
class Observed:
    """What the contract stages saw: the gradient check's starting point."""

    originals: list[Any]  # private copies of the caller's inputs, never handed to the layer
    outputs: tuple[Any, ...]  # forward at the caller's inputs
    dy: list[Any | None]  # grad_output as backward was given it (None for non-floating outputs)
    gradients: list[Any]  # backward's first answer, copied
    usable: list[int]  # inputs whose gradient passed the contracts
    linear: bool  # backward scaled exactly with grad_output (its residuals are rounding)
