"""JAX arrays at the boundary between a layer and the engine.

JAX arrays are immutable, and the engine perturbs its arrays in place (one element at a time),
so a JAX layer is checked on host arrays of the engine's library: the layer is handed JAX arrays
made from them, and what it returns comes back without a copy where JAX allows (DLPack; a CPU
array's buffer is read in place, read-only). Detection looks in ``sys.modules`` and never imports
JAX itself.

64-bit values exist in JAX only under ``jax_enable_x64``: a call that carries a float64 (or
int64, complex128) array runs with it set, and the caller's setting is restored after; float32
and bfloat16 calls run under the caller's setting, as the layer runs in real use.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

WIDE = frozenset({"float64", "int64", "uint64", "complex128"})  # dtypes that need jax_enable_x64


def jax_module() -> Any:
    """The imported ``jax`` module, or None where nobody imported it."""
    return sys.modules.get("jax")


def is_jax(x: Any) -> bool:
    """True for a JAX array (``jax.Array``), concrete or traced."""
    jax = jax_module()
    return jax is not None and isinstance(x, jax.Array)


def import_jax(label: str) -> Any:
    """``jax``, imported; ImportError saying what needs it otherwise."""
    try:
        import jax
    except ImportError as exc:
        raise ImportError(f"{label} needs JAX, which cannot be imported: {exc}") from None
    return jax


def device_of(x: Any) -> Any:
    """The one device a JAX array lives on."""
    devices = x.devices() if hasattr(x, "devices") else {x.device}
    return next(iter(devices))


def device_label(device: Any) -> str:
    """``cpu`` or ``gpu:0``: how reports name a JAX device."""
    platform = getattr(device, "platform", "cpu")
    return "cpu" if platform == "cpu" else f"{platform}:{getattr(device, 'id', 0)}"


def to_host(x: Any) -> np.ndarray:
    """A JAX array as a NumPy array: the buffer itself through DLPack where JAX allows (a CPU
    array; read-only, like JAX's), else a copy (bfloat16, which DLPack has no code for, and
    arrays on an accelerator)."""
    if device_label(device_of(x)) == "cpu":
        with contextlib.suppress(RuntimeError, TypeError, BufferError, ValueError):
            return np.from_dlpack(x)
    return np.asarray(x)


def needs_x64(arrays: Iterable[Any]) -> bool:
    """Whether any of ``arrays`` has a 64-bit dtype (which JAX keeps only under x64)."""
    return any(str(getattr(a, "dtype", "")) in WIDE for a in arrays)


@contextlib.contextmanager
def x64(enabled: bool) -> Iterator[None]:
    """``jax_enable_x64`` set for the block when ``enabled`` (restored after), else untouched."""
    jax = jax_module()
    if not enabled or jax is None or jax.config.jax_enable_x64:
        yield
        return
    context: Any = getattr(jax, "enable_x64", None)  # jax.experimental's in older JAX
    if context is None:
        context = importlib.import_module("jax.experimental").enable_x64
    with context(True):
        yield


def from_host(a: Any, device: Any = None) -> Any:
    """A NumPy array as a JAX array of the same dtype (a copy JAX owns: the engine goes on
    writing into its own array), on ``device`` (default: JAX's)."""
    jax = import_jax("a JAX array")
    fresh = np.array(a, copy=True)  # device_put may keep a CPU array's buffer: give it its own
    with x64(needs_x64([fresh])):
        return jax.device_put(fresh, device)
