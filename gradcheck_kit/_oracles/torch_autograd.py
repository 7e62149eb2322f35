"""A second, finite-difference-free oracle: a torch reference function and autograd's VJP.

The reference takes the forward's signature (torch tensors in, torch tensors out). It runs in
float64 on the inputs' device where torch can reach it (CPU, or CUDA for torch/CuPy arrays), and
autograd's vector-Jacobian product for the same grad_output is compared with the layer's own
float64 gradient when the layer has one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._engine.tolerances import ROUNDING_ULPS, precision_tolerance
from .._ground.backends import backend_name, dtype_name, eps, is_array, is_floating, to_numpy
from .._ground.invoke import LayerCallError, call
from .._result import Finding

# Two float64 implementations of one formula may round differently by far more than a few ulps
# when they cancel large terms; the reference is an oracle for bugs (>> 1e-10), not for ulps.
REFERENCE_RTOL = 1e-10


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


def compare_with_reference(
    session: Any, y: Sequence[Any], dy: Sequence[Any], grads: Sequence[Any], usable: Sequence[int]
) -> list[Finding]:
    if "torch" not in sys.modules:
        try:
            import torch  # noqa: F401
        except ImportError:
            return [Finding("reference", "a torch reference was given but torch is not installed")]
    try:
        return _compare(session, y, dy, usable)
    except LayerCallError as exc:
        return [Finding("reference", f"reference {exc.message}", traceback=exc.traceback)]


def _compare(session: Any, y: Sequence[Any], dy: Sequence[Any], usable: Sequence[int]) -> list[Finding]:
    import torch

    plan = session.plan
    tensors = [to_torch(x, float64=True) if is_array(x) else x for x in session.originals]
    for i in usable:
        tensors[i].requires_grad_(True)
    with torch.enable_grad():
        value = call(session.reference, tensors, plan.params, "reference (torch)")
    outputs = value if isinstance(value, (tuple, list)) else (value,)
    if len(outputs) != len(y):
        return [Finding("reference", f"reference returned {len(outputs)} outputs, forward {len(y)}")]
    ev = getattr(session, "evaluation", None)
    mine = ev.outputs if ev is not None else y
    found = [
        f
        for k, (ref, out, low) in enumerate(zip(outputs, mine, y))
        if (f := _differ(f"forward output {k}", to_numpy(ref.detach()), out, eps_of(low, ev), None))
    ]
    return found + _vjp(session, outputs, tensors, dy, usable, ev)


def eps_of(low: Any, ev: Any) -> float:
    return max(eps(low), getattr(ev, "forward_eps", 0.0) or 0.0)


def _vjp(
    session: Any,
    outputs: Sequence[Any],
    tensors: list[Any],
    dy: Sequence[Any],
    usable: Sequence[int],
    ev: Any,
) -> list[Finding]:
    import torch

    pairs = [
        (o, to_torch(d, float64=True).to(o.device))
        for o, d in zip(outputs, session.dy_values)
        if d is not None and o.requires_grad
    ]
    if not pairs or not usable:
        return []
    wanted = [tensors[i] for i in usable]

    def vjp(cotangents: list[Any]) -> list[np.ndarray]:
        grads = torch.autograd.grad(
            [o for o, _ in pairs], wanted, cotangents, allow_unused=True, retain_graph=True
        )
        return [np.zeros(tuple(t.shape)) if g is None else to_numpy(g) for t, g in zip(wanted, grads)]

    try:
        ref_grads = vjp([d.to(o.dtype) for o, d in pairs])
    except RuntimeError as exc:
        return [Finding("reference", f"torch autograd could not differentiate the reference: {exc}")]
    torch_rounding = _LazyRounding(vjp, [d.to(o.dtype) for o, d in pairs], ref_grads)
    found = []
    for k, (i, ref_np) in enumerate(zip(usable, ref_grads)):
        mine = ev.gradients[i] if ev is not None else None
        if mine is None:
            continue
        name = session.plan.names[i]

        def floor(i: int = i, k: int = k) -> float:
            return ROUNDING_ULPS * (ev.rounding_scale(i) + torch_rounding.scale(k))

        finding = _differ(f"gradient for {name}", ref_np, mine, eps(mine), name, floor)
        if finding is not None:
            found.append(finding)
    return found


class _LazyRounding:
    """The reference VJP's own rounding: |v(dy) + v(d) - v(dy + d)| (see precision)."""

    def __init__(self, vjp: Callable[[list[Any]], list[np.ndarray]], dy: list[Any], first: list[np.ndarray]):
        self.vjp, self.dy, self.first = vjp, dy, first
        self.residuals: list[np.ndarray] | None = None

    def scale(self, k: int) -> float:
        if self.residuals is None:
            import torch

            generator = torch.Generator(device=self.dy[0].device).manual_seed(2)
            other = [
                torch.rand(d.shape, generator=generator, dtype=d.dtype, device=d.device) * 3 - 1.5
                for d in self.dy
            ]
            both = [d + e for d, e in zip(self.dy, other)]
            self.residuals = [
                np.abs(a + b - c) for a, b, c in zip(self.first, self.vjp(other), self.vjp(both))
            ]
        residual = self.residuals[k]
        return float(np.max(residual)) if residual.size else 0.0


def _differ(
    label: str,
    reference: np.ndarray,
    mine: Any,
    epsilon: float,
    name: str | None,
    floor: Callable[[], float] | None = None,
) -> Finding | None:
    """A finding when ``mine`` differs from ``reference`` beyond rounding; ``floor`` measures the
    rounding the computation really has (asked only when the model's allowance is exceeded)."""
    ours = to_numpy(mine).astype(np.float64)
    if ours.shape != reference.shape:
        return Finding(
            "reference", f"{label} has shape {ours.shape}, the reference's {reference.shape}", input=name
        )
    reference = reference.astype(np.float64)
    peak = float(np.max(np.abs(reference))) if reference.size else 0.0
    allowed = np.maximum(precision_tolerance(epsilon, reference), REFERENCE_RTOL * (np.abs(reference) + peak))
    excess = np.abs(ours - reference) - allowed
    if floor is not None and (excess > 0).any():
        allowed = allowed + floor()
        excess = np.abs(ours - reference) - allowed
    if ours.size == 0 or not (excess > 0).any():
        return None
    k = np.unravel_index(int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess))), excess.shape)
    where = tuple(int(v) for v in k)
    return Finding(
        "reference",
        f"{label} ({dtype_name(mine)}) differs from the torch reference at {list(where)}: "
        f"{ours[k]:.8g} vs {reference[k]:.8g} (allowed ±{allowed[k]:.3g})",
        input=name,
        where=where,
        details={"ours": float(ours[k]), "reference": float(reference[k])},
    )
