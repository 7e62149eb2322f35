"""Contract checks, each its own named finding: gradient count, shapes and dtypes; non-finite
values from finite inputs; writes into inputs or grad_output; outputs aliasing inputs; and
repeated calls that disagree beyond rounding (a race, hidden state)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._ground.backends import (
    Backend,
    all_finite,
    backend_name,
    dtype_name,
    eps,
    first_difference,
    float_rank,
    is_array,
    is_floating,
    same_values,
    shares_memory,
    to_numpy,
)
from .._result import WARNING, Finding
from .tolerances import repeat_tolerance


def mutations(
    stage: str, labels: Sequence[str], before: Sequence[Any], after: Sequence[Any]
) -> list[Finding]:
    """One finding per array ``stage`` wrote into."""
    found = []
    for label, old, new in zip(labels, before, after):
        if not is_array(new) or same_values(old, new):
            continue
        where = first_difference(old, new)
        at = f" (first change at {list(where)})" if where else ""
        found.append(
            Finding(
                "mutation",
                f"{stage} wrote into {label}{at}; work on a copy",
                input=label,
                where=where,
                details={"stage": stage},
            )
        )
    return found


def aliasing(outputs: Sequence[Any], inputs: Sequence[Any], names: Sequence[str]) -> list[Finding]:
    """Outputs sharing memory with inputs: a warning, not a bug. Views (``A[..., ::k]``,
    ``x.reshape``, ``x.T``) are idiomatic, and the gradient is the same; what can go wrong is an
    in-place update of the output later (``out += ...``, an optimizer step), which writes into
    the input too. A write the check actually observes is a ``mutation`` failure of its own."""
    found = []
    for k, y in enumerate(outputs):
        for name, x in zip(names, inputs):
            if is_array(x) and shares_memory(y, x):
                found.append(
                    Finding(
                        "aliasing",
                        f"forward output {k} shares memory with input {name} (a view of it): an in-place "
                        f"update of the output downstream would also change {name}; harmless for a pure "
                        "view, return a copy otherwise (allow_aliasing=True silences this warning)",
                        severity=WARNING,
                        input=name,
                    )
                )
    return found


def nonfinite(arrays: Sequence[Any], labels: Sequence[str], stage: str) -> list[Finding]:
    found = []
    for label, a in zip(labels, arrays):
        if a is None or not is_floating(a) or all_finite(a):
            continue
        host = to_numpy(a)
        bad = ~np.isfinite(host)
        if bad.any():
            where = tuple(int(v) for v in np.argwhere(bad)[0])
            kind = "NaN" if np.isnan(host).any() else "Inf"
            found.append(
                Finding(
                    "nonfinite",
                    f"{stage} produced {kind} in {label} from finite inputs "
                    f"({int(bad.sum())} of {bad.size} elements, first at {list(where)})",
                    input=label,
                    where=where,
                    details={"count": int(bad.sum()), "stage": stage},
                )
            )
    return found


def gradient_contract(
    grads: Sequence[Any],
    inputs: Sequence[Any],
    names: Sequence[str],
    diff: Sequence[int],
    computes_in: str = "float64",
) -> tuple[list[Finding], list[int]]:
    """Findings on backward's gradients and the inputs whose gradient is usable.

    A gradient less precise than its input is an error unless the layer's outputs are just as
    coarse (a float32 kernel fed float64 answers in float32): then it is a warning."""
    found: list[Finding] = []
    usable = []
    for i in diff:
        problem = _gradient_problem(grads[i], inputs[i], names[i], computes_in)
        if problem is None:
            usable.append(i)
            found += _dtype_warning(grads[i], inputs[i], names[i])
        else:
            found.append(problem)
    return found, usable


def _gradient_problem(g: Any, x: Any, name: str, computes_in: str) -> Finding | None:
    def bad(kind: str, text: str, **details: Any) -> Finding:
        return Finding(kind, f"gradient for {name} {text}", input=name, details=details)

    if g is None:
        return bad(
            "count",
            f"is None, but the input is differentiable; return an array, or leave {name} out of the"
            " check with wrt= (labels, targets)",
        )
    if not is_array(g):
        return bad("type", f"is {type(g).__name__}; return an array like the input")
    if backend_name(g) != backend_name(x):
        return bad("type", f"is a {backend_name(g)} array; the input is {backend_name(x)}")
    if tuple(g.shape) != tuple(x.shape):
        return bad("shape", f"has shape {tuple(g.shape)}; the input has shape {tuple(x.shape)}")
    if not is_floating(g):
        return bad("dtype", f"has dtype {dtype_name(g)}; the input is {dtype_name(x)}")
    if float_rank(g) < min(float_rank(x), float_rank(computes_in)):
        return bad(
            "dtype",
            f"has dtype {dtype_name(g)}, less precise than the input's {dtype_name(x)}",
            coarser=dtype_name(g),
        )
    return None


def excuse_coarse(
    found: list[Finding],
    usable: list[int],
    grads: Sequence[Any],
    inputs: Sequence[Any],
    names: Sequence[str],
    rounded: Any,
) -> tuple[list[Finding], list[int]]:
    """A gradient less precise than its input is no bug where the layer itself rounds that input
    to the gradient's dtype first (``rounded(i, dtype)``; NumPy 1.x's promotion hands such a
    float32 kernel's loss back in float64): then it is the dtype warning."""
    kept = []
    for finding in found:
        coarser = finding.details.get("coarser")
        i = names.index(finding.input) if coarser and finding.input in names else None
        if i is not None and rounded(i, coarser):
            usable = sorted([*usable, i])
            kept += _dtype_warning(grads[i], inputs[i], names[i], f"the layer rounds {names[i]} to it inside")
        else:
            kept.append(finding)
    return kept, usable


def _dtype_warning(g: Any, x: Any, name: str, how: str | None = None) -> list[Finding]:
    if float_rank(g) == float_rank(x):
        return []
    if how is None:
        how = (
            "upcast; frameworks cast it back" if float_rank(g) > float_rank(x) else "the layer computes in it"
        )
    return [
        Finding(
            "dtype",
            f"gradient for {name} is {dtype_name(g)} for a {dtype_name(x)} input ({how})",
            severity=WARNING,
            input=name,
        )
    ]


def repeats(first: Sequence[Any], second: Sequence[Any], labels: Sequence[str], stage: str) -> list[Finding]:
    """Two calls on identical inputs: rounding-level reordering passes, anything more fails."""
    found = []
    for label, a, b in zip(labels, first, second):
        if not (is_array(a) and is_array(b)) or not is_floating(a) or a.shape != b.shape:
            continue
        if same_values(a, b):  # the usual case, decided on the device
            continue
        a_np, b_np = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
        finite = np.isfinite(a_np) & np.isfinite(b_np)
        if not np.array_equal(np.isfinite(a_np), np.isfinite(b_np)):
            diff_at = tuple(int(v) for v in np.argwhere(np.isfinite(a_np) != np.isfinite(b_np))[0])
            found.append(_repeat_finding(stage, label, diff_at, float("inf"), 0.0))
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            delta = np.where(finite, np.abs(a_np - b_np), 0.0)
        if delta.size == 0:
            continue
        peak = float(np.max(np.abs(np.where(finite, a_np, 0.0))))
        allowed = repeat_tolerance(eps(a), peak, a_np.size)
        worst = float(delta.max())
        if worst > allowed:
            where = tuple(int(v) for v in np.unravel_index(int(np.argmax(delta)), delta.shape))
            found.append(_repeat_finding(stage, label, where, worst, allowed))
    return found


def exact_scale(dy: Sequence[Any]) -> float:
    """A factor by which scaling grad_output scales a linear backward's result exactly: -2 (a
    power of two commutes with rounding; the sign catches a grad_output used through |dy|),
    or -1 where doubling could overflow a 16-bit dtype."""
    wide = all(float_rank(d) >= float_rank("float32") for d in dy if d is not None)
    return -2.0 if wide else -1.0


def scaled(backend: Backend, arrays: Sequence[Any], factor: float) -> list[Any]:
    """New arrays ``factor * a`` (None stays None), scaled in place: 0-d arrays stay arrays."""
    out = backend.copies(arrays)
    for a in out:
        if is_array(a):
            a *= factor
    return out


def nonlinear(
    expected: Sequence[Any], second: Sequence[Any], labels: Sequence[str], scale: float
) -> list[Finding]:
    """Findings for gradients that did not scale with grad_output (``expected``: scale times the
    first gradients; ``second``: backward at scale times grad_output)."""
    found = []
    for label, want, got in zip(labels, expected, second):
        if not (is_array(want) and is_array(got)) or want.shape != got.shape or not is_floating(got):
            continue
        a, b = to_numpy(want).astype(np.float64), to_numpy(got).astype(np.float64)
        peak = float(np.max(np.abs(a))) if a.size else 0.0
        with np.errstate(invalid="ignore"):
            delta = np.nan_to_num(np.abs(a - b), nan=np.inf)
        if delta.size and float(delta.max()) > repeat_tolerance(eps(got), peak, a.size):
            found.append(_nonlinear_finding(label, a, b, delta, scale))
    return found


def _nonlinear_finding(label: str, a: np.ndarray, b: np.ndarray, delta: np.ndarray, scale: float) -> Finding:
    where = tuple(int(v) for v in np.unravel_index(int(np.argmax(delta)), delta.shape))
    if np.array_equal(a / scale, b):  # the same as the first call's
        pattern, how = "grad_output_ignored", "is the same whatever grad_output is (grad_output ignored)"
    else:
        pattern = "not_linear_in_grad_output"
        how = "has a part that does not scale with grad_output (an additive term, or a nonlinear use of it)"
    return Finding(
        "linearity",
        f"backward is not linear in grad_output: the {label} {how}; at {list(where)} it gave "
        f"{b[where]:.6g} for {scale:g} x grad_output where {scale:g} x the first call's is {a[where]:.6g}",
        input=label.removeprefix("gradient for "),
        where=where,
        details={"scale": scale, "expected": float(a[where]), "got": float(b[where]), "pattern": pattern},
    )


def _repeat_finding(stage: str, label: str, where: tuple[int, ...], worst: float, allowed: float) -> Finding:
    return Finding(
        "determinism",
        f"{stage} gave a different {label} on a second identical call "
        f"(max |difference| {worst:.3g} at {list(where)}, rounding allows {allowed:.3g}): "
        "a race, hidden state or randomness",
        input=label,
        where=where,
        details={"stage": stage, "difference": worst, "allowed": allowed},
    )
