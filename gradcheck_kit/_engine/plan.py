"""Validated arguments of ``gk.check``: anything unusable raises ``gk.InvalidArgument`` naming
the offending value, the rule, and what is accepted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._ground.backends import Backend, backend_of, dtype_name, is_array, is_complex, is_floating, to_numpy
from .._ground.vocabulary import MODES
from ..errors import InvalidArgument
from ..registry import Case, positional_names


@dataclass(frozen=True, kw_only=True)
class Plan:
    """``gk.check``'s arguments, validated: the layer, its inputs and what to check."""

    forward: Callable[..., Any]
    backward: Callable[..., Any]
    inputs: list[Any]
    params: dict[str, Any]
    backend: Backend
    names: list[str]  # the inputs' names (forward's parameter names where they fit)
    diff: list[int]  # the inputs to differentiate
    seed: int
    rtol: float | None
    atol: float | None
    mode: str
    name: str
    case: str  # the inputs and params in words


def make_plan(
    *,
    forward: Any,
    backward: Any,
    inputs: Any,
    params: Any,
    wrt: Any,
    backend: str | None,
    seed: Any,
    rtol: Any,
    atol: Any,
    mode: Any,
    name: str | None,
) -> Plan:
    """The validated ``Plan``; InvalidArgument naming the offending value and the rule."""
    for role, fn in (("forward", forward), ("backward", backward)):
        if not callable(fn):
            raise InvalidArgument(f"{role}={fn!r} must be callable")
    arrays = _normalize_inputs(inputs)
    chosen = backend_of([x for x in arrays if is_array(x)], requested=backend)
    arrays = [chosen.from_numpy(x) if isinstance(x, _Scalar) else x for x in arrays]
    names = _input_names(forward, len(arrays))
    if mode not in MODES:
        raise InvalidArgument(f"mode={mode!r} is unknown; accepted: {', '.join(MODES)}")
    values = dict(params or {})
    return Plan(
        forward=forward,
        backward=backward,
        inputs=arrays,
        params=values,
        backend=chosen,
        names=names,
        diff=_differentiable(arrays, names, wrt),
        seed=_nonnegative_int("seed", seed),
        rtol=_tolerance("rtol", rtol),
        atol=_tolerance("atol", atol),
        mode=mode,
        name=name or getattr(forward, "__qualname__", None) or "layer",
        case=Case(tuple(arrays), values).describe(names),
    )


class _Scalar(np.ndarray):
    """Marks a Python number the caller passed as an input (converted to the backend later)."""


def _normalize_inputs(inputs: Any) -> list[Any]:
    if is_array(inputs) or isinstance(inputs, (int, float)):
        inputs = (inputs,)
    if not isinstance(inputs, (tuple, list)):
        raise InvalidArgument(f"inputs={inputs!r} must be a tuple of arrays")
    out = []
    for k, x in enumerate(inputs):
        if isinstance(x, bool) or not (is_array(x) or isinstance(x, (int, float))):
            raise InvalidArgument(
                f"inputs[{k}]={x!r} is not an array; pass arrays as inputs and anything static through params"
            )
        out.append(np.asarray(x).view(_Scalar) if isinstance(x, (int, float)) else x)
    return out


def _input_names(forward: Any, n: int) -> list[str]:
    names = list(positional_names(forward))
    if len(names) >= n and len(set(names[:n])) == n:
        return names[:n]
    return [f"input{k}" for k in range(n)]


def _differentiable(inputs: list[Any], names: list[str], wrt: Any) -> list[int]:
    for name, x in zip(names, inputs):
        if is_complex(x):
            raise InvalidArgument(f"input {name} is {dtype_name(x)}; complex inputs are not supported")
        if is_floating(x) and not np.all(np.isfinite(to_numpy(x))):
            raise InvalidArgument(f"input {name} contains NaN or Inf; check at finite inputs")
    if wrt is None:
        return [k for k, x in enumerate(inputs) if is_floating(x)]
    chosen = [wrt] if isinstance(wrt, (int, str)) else list(wrt)
    out = []
    for w in chosen:
        k = names.index(w) if isinstance(w, str) and w in names else w
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(inputs):
            raise InvalidArgument(f"wrt={wrt!r}: {w!r} is not an input; inputs are {names}")
        if not is_floating(inputs[k]):
            raise InvalidArgument(
                f"wrt={wrt!r}: input {names[k]} is {dtype_name(inputs[k])}; only floating inputs "
                "are differentiated"
            )
        out.append(k)
    return sorted(set(out))


def _nonnegative_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidArgument(f"{label}={value!r} must be a non-negative int")
    return int(value)


def positive_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InvalidArgument(f"{label}={value!r} must be a positive int")
    return int(value)


def _tolerance(label: str, value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value >= 0
        or value == float("inf")
    ):
        raise InvalidArgument(f"{label}={value!r} must be a finite number >= 0 (or None)")
    return float(value)
