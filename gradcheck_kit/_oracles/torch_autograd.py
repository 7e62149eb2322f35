"""A second, finite-difference-free oracle: a torch function of the same math, run in float64,
and torch autograd's vector-Jacobian product through it.

The reference takes the forward's signature (torch tensors in, torch tensors out). It runs on
the inputs' device where torch can reach it (CPU, or CUDA for torch and CuPy arrays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._ground.backends import backend_name, is_array, is_floating, to_numpy
from .._ground.invoke import call


def to_torch(x: Any, *, float64: bool) -> Any:
    """A detached torch copy of any backend's array (float64 if asked), on a device torch has."""
    import torch

    if backend_name(x) == "torch":
        t = x.detach().clone()
    elif backend_name(x) == "cupy" and torch.cuda.is_available():
        t = torch.from_dlpack(x.copy())
    else:
        t = torch.tensor(to_numpy(x))
    return t.to(torch.float64) if float64 and is_floating(x) else t


@dataclass
class ReferenceRun:
    """The reference run on float64 copies of the inputs, differentiable in ``wanted``."""

    outputs: tuple[Any, ...]
    tensors: list[Any]
    wanted: list[int]
    _paired: list[tuple[Any, Any]] = field(default_factory=list, repr=False)  # (output, its dy)
    _residuals: list[np.ndarray] | None = field(default=None, repr=False)

    def values(self) -> list[np.ndarray]:
        """The outputs as float64 host arrays."""
        return [to_numpy(o.detach()).astype(np.float64) for o in self.outputs]

    def vjp(self, dy: Sequence[Any | None]) -> list[np.ndarray]:
        """torch autograd's VJP for grad_output ``dy`` (any backend's arrays), per wanted input."""

        pairs = [
            (o, to_torch(d, float64=True).to(o.device).to(o.dtype))
            for o, d in zip(self.outputs, dy)
            if d is not None and o.requires_grad
        ]
        self._paired = pairs
        if not pairs:
            return [np.zeros(tuple(self.tensors[i].shape)) for i in self.wanted]
        return self._grad([d for _, d in pairs])

    def rounding(self, k: int, first: Sequence[np.ndarray]) -> float:
        """The VJP's own rounding for wanted input k: max |v(dy) + v(d) - v(dy + d)|, measured
        once (``first``: v(dy) as returned by ``vjp``)."""
        if self._residuals is None:
            import torch

            dy = [d for _, d in self._paired]
            generator = torch.Generator(device=dy[0].device).manual_seed(2)
            other = [
                torch.rand(d.shape, generator=generator, dtype=d.dtype, device=d.device) * 3 - 1.5 for d in dy
            ]
            both = [d + e for d, e in zip(dy, other)]
            self._residuals = [
                np.abs(a + b - c) for a, b, c in zip(first, self._grad(other), self._grad(both))
            ]
        residual = self._residuals[k]
        return float(np.max(residual)) if residual.size else 0.0

    def _grad(self, cotangents: list[Any]) -> list[np.ndarray]:
        """The VJP for ``cotangents`` of the outputs paired with a grad_output."""
        import torch

        outputs = [o for o, _ in self._paired]
        leaves = [self.tensors[i] for i in self.wanted]
        grads = torch.autograd.grad(outputs, leaves, cotangents, allow_unused=True, retain_graph=True)
        return [np.zeros(tuple(t.shape)) if g is None else to_numpy(g) for t, g in zip(leaves, grads)]


def run_reference(
    reference: Callable[..., Any], inputs: Sequence[Any], wanted: Sequence[int], params: Mapping[str, Any]
) -> ReferenceRun:
    """``reference(*float64 copies of inputs, **params)`` with autograd on for ``wanted``;
    LayerCallError if it raises."""
    import torch

    tensors = [to_torch(x, float64=True) if is_array(x) else x for x in inputs]
    for i in wanted:
        tensors[i].requires_grad_(True)
    with torch.enable_grad():
        value = call(reference, tensors, params, "reference (torch)")
    outputs = value if isinstance(value, (tuple, list)) else (value,)
    return ReferenceRun(tuple(outputs), tensors, list(wanted))
