"""A second, finite-difference-free oracle: a torch reference function and autograd's VJP.

The reference takes the forward's signature (torch tensors in, torch tensors out). It runs in
float64 on the inputs' device where torch can reach it (CPU, or CUDA for torch/CuPy arrays), and
autograd's vector-Jacobian product for the same grad_output is compared with the layer's own
float64 gradient when the layer has one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backends import backend_name, dtype_name, eps, is_array, is_floating, to_numpy
from ..invoke import LayerCallError, call
from ..result import Finding
from ..tolerances import precision_tolerance


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
    try:
        ref_grads = torch.autograd.grad(
            [o for o, _ in pairs], wanted, [d.to(o.dtype) for o, d in pairs], allow_unused=True
        )
    except RuntimeError as exc:
        return [Finding("reference", f"torch autograd could not differentiate the reference: {exc}")]
    found = []
    for i, ref in zip(usable, ref_grads):
        mine = ev.gradients[i] if ev is not None else None
        if mine is None:
            continue
        ref_np = np.zeros(tuple(tensors[i].shape)) if ref is None else to_numpy(ref)
        name = session.plan.names[i]
        finding = _differ(f"gradient for {name}", ref_np, mine, eps(mine), name)
        if finding is not None:
            found.append(finding)
    return found


def _differ(label: str, reference: np.ndarray, mine: Any, epsilon: float, name: str | None) -> Finding | None:
    ours = to_numpy(mine).astype(np.float64)
    if ours.shape != reference.shape:
        return Finding(
            "reference", f"{label} has shape {ours.shape}, the reference's {reference.shape}", input=name
        )
    reference = reference.astype(np.float64)
    allowed = precision_tolerance(epsilon, reference)
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
