"""Calling user code: every exception it raises becomes a ``LayerCallError`` with its traceback,
and whatever it returns is normalised (or rejected with a one-line reason) before we use it."""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import CheckTimeout
from . import progress
from .backends import Backend, backend_name, is_array

# A KeyboardInterrupt ends the run: it is the user's Ctrl-C. A worker process, which ignores
# SIGINT (its parent handles Ctrl-C), turns this off: there, only the layer can have raised it.
INTERRUPTS_PASS = True


class LayerCallError(Exception):
    """The layer raised (``exception`` set) or returned something unusable (``exception`` None)."""

    def __init__(self, stage: str, message: str, exception: BaseException | None = None) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message
        self.exception = exception
        self.traceback = "".join(traceback.format_exception(exception)) if exception is not None else None


def call(
    fn: Callable[..., Any],
    args: Sequence[Any],
    params: Mapping[str, Any],
    stage: str,
    counter: Counter[str] | None = None,
) -> Any:
    """``fn(*args, **params)``; an exception from the layer becomes LayerCallError."""
    if counter is not None:
        kind = stage.split(" ")[0]
        counter[kind] += 1
        progress.mark(f"{stage}, call {counter[kind]}")
    else:
        progress.mark(stage)
    try:
        return fn(*args, **params)
    except (LayerCallError, CheckTimeout):
        raise
    except KeyboardInterrupt as exc:
        if INTERRUPTS_PASS:
            raise
        raise LayerCallError(stage, "raised KeyboardInterrupt", exc) from exc
    except BaseException as exc:  # SystemExit too: a layer calling sys.exit() must not end the run
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise LayerCallError(stage, f"raised {summary}", exc) from exc


def outputs_of(value: Any, backend: str) -> tuple[Any, ...]:
    """Forward's return value as a tuple of arrays, or LayerCallError saying what was wrong."""
    items = value if isinstance(value, tuple) else (value,)
    if isinstance(value, list):
        raise LayerCallError("forward", "returned a list; return an array or a tuple of arrays")
    if not items:
        raise LayerCallError("forward", "returned an empty tuple; return at least one array")
    for i, item in enumerate(items):
        where = f"output {i}" if len(items) > 1 else "the output"
        if item is None:
            raise LayerCallError("forward", f"returned None for {where}; return an array")
        if not is_array(item):
            raise LayerCallError("forward", f"returned {type(item).__name__} for {where}; return an array")
        if backend_name(item) != backend:
            raise LayerCallError(
                "forward", f"returned a {backend_name(item)} array for {where}, inputs are {backend}"
            )
    return tuple(_as_array(item) for item in items)


def _as_array(item: Any) -> Any:
    return np.asarray(item) if isinstance(item, np.generic) else item


def gradients_of(value: Any, n_inputs: int) -> list[Any]:
    """Backward's return value as one entry per input (arrays, Python numbers or None)."""
    if n_inputs == 1 and (is_array(value) or isinstance(value, (int, float))):
        value = (value,)
    if value is None:
        raise LayerCallError("backward", "returned None; return a tuple with one gradient per input")
    if not isinstance(value, (tuple, list)):
        raise LayerCallError(
            "backward",
            f"returned {type(value).__name__}; return a tuple with one gradient per input",
        )
    if len(value) != n_inputs:
        raise LayerCallError(
            "backward",
            f"returned {len(value)} gradient(s) for {n_inputs} input(s); return one per input "
            "(None for an input that is not differentiated)",
        )
    return list(value)


def normalize_gradient(backend: Backend, grad: Any, x: Any) -> Any:
    """Python numbers and NumPy scalars for a 0-d input become 0-d arrays of the input's dtype."""
    number = isinstance(grad, (int, float, np.generic)) and not isinstance(grad, bool)
    if number and tuple(getattr(x, "shape", (None,))) == ():
        return backend.astype(backend.from_numpy(np.asarray(float(grad))), x.dtype)
    return grad
