"""NumPy, CuPy and torch behind one small interface (and JAX at the boundary).

The engine is written once against these helpers and the array namespace ``xp`` that
array-api-compat gives for the caller's arrays, so finite differences run on the array's own
device. Detection looks in ``sys.modules`` and never imports CuPy, torch or JAX itself. JAX
arrays are immutable: a JAX layer is checked on NumPy arrays that are handed to it as JAX
arrays (``jaxarrays``); the ``jax`` backend here only makes a case's arrays.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..errors import InvalidArgument
from .jaxarrays import device_label, device_of, from_host, is_jax, to_host
from .vocabulary import BACKEND_NAMES, BACKEND_PATTERN, BACKENDS_ACCEPTED, EPS, FLOAT_DTYPES, LIBRARIES


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _is_cupy(x: Any) -> bool:
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def is_array(x: Any) -> bool:
    """True for NumPy arrays (and scalars), CuPy arrays, torch tensors and JAX arrays."""
    return isinstance(x, (np.ndarray, np.generic)) or _is_torch(x) or _is_cupy(x) or is_jax(x)


def backend_name(x: Any) -> str:
    if _is_torch(x):
        return "torch"
    if _is_cupy(x):
        return "cupy"
    if isinstance(x, (np.ndarray, np.generic)):
        return "numpy"
    if is_jax(x):
        return "jax"
    raise InvalidArgument(
        f"{type(x).__name__} is not an array; accepted: numpy.ndarray, cupy.ndarray, torch.Tensor, jax.Array"
    )


def numpy_dtype(name: str) -> Any:
    """The NumPy dtype named ``name``; ``bfloat16`` is ml_dtypes' (what JAX's bfloat16 arrays
    become on the host), where it is installed."""
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise TypeError("bfloat16 NumPy arrays need ml_dtypes (it comes with JAX)") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


_DTYPE_NAMES: dict[Any, str] = {}


def dtype_name(x: Any) -> str:
    """'float32', 'int64', … for any backend's array or dtype (memoized: NumPy formats the name
    anew on every ``dtype.name``, and a check asks a few hundred times)."""
    dtype = np.dtype(x) if isinstance(x, type) else getattr(x, "dtype", x)  # np.float32 is a type
    try:
        return _DTYPE_NAMES[dtype]
    except (KeyError, TypeError):
        pass
    name = getattr(dtype, "name", None)
    name = name if isinstance(name, str) else str(dtype).removeprefix("torch.")
    with contextlib.suppress(TypeError):  # an unhashable dtype-like: just answer
        _DTYPE_NAMES[dtype] = name
    return name


def is_floating(x: Any) -> bool:
    return dtype_name(x) in FLOAT_DTYPES


def is_complex(x: Any) -> bool:
    return dtype_name(x).startswith("complex")


def eps(x: Any) -> float:
    """Machine epsilon of a floating array or dtype (float64's for anything else)."""
    return EPS.get(dtype_name(x), EPS["float64"])


def float_rank(x: Any) -> int:
    """Order floating dtypes by precision: float16 < bfloat16 < float32 < float64."""
    name = dtype_name(x)
    return FLOAT_DTYPES.index(name) if name in FLOAT_DTYPES else -1


@dataclass(frozen=True)
class Backend:
    """One array library plus the device the caller's arrays live on. ``shown``: the library
    the layer itself sees, where the engine checks it through another's arrays (JAX's)."""

    name: str
    device: Any = "cpu"
    xp: Any = field(default=None, compare=False, repr=False)
    shown: str | None = None

    def label(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.name == "jax":
            return "jax" if self.device == "default" else f"jax:{device_label(self.device)}"
        device = str(self.device)
        return self.name if device in ("None", "cpu") else f"{self.name}:{device}"

    # -- conversion --------------------------------------------------------------------------
    def from_numpy(self, a: np.ndarray) -> Any:
        a = np.asarray(a, order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
        if self.name == "numpy":
            return a
        if self.name == "jax":
            return from_host(a, None if self.device == "default" else self.device)
        if self.name == "torch":
            torch = sys.modules["torch"]
            return torch.as_tensor(a, device=self.device)
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(self.device):
            return cupy.asarray(a)

    def astype(self, x: Any, dtype: Any) -> Any:
        """A contiguous copy of ``x`` converted to ``dtype`` (a name or a dtype), on x's device."""
        name = dtype_name(dtype)
        if self.name == "torch":
            torch = sys.modules["torch"]
            return x.detach().to(dtype=getattr(torch, name), copy=True).contiguous()
        if self.name == "cupy":
            return sys.modules["cupy"].array(x, dtype=name, copy=True, order="C")
        return np.array(x, dtype=numpy_dtype(name), copy=True, order="C")

    def copy(self, x: Any) -> Any:
        return self.astype(x, x.dtype)

    def copies(self, arrays: Sequence[Any]) -> list[Any]:
        """Copies of this library's arrays; anything else (another library's array, which the
        gradient contract reports) is kept as it is."""
        return [self.copy(a) if is_array(a) and backend_name(a) == self.name else a for a in arrays]

    def float64(self, x: Any) -> Any:
        return self.astype(x, "float64")

    def as_float64(self, x: Any) -> Any:
        """``x`` itself when it already is float64 (treat as read-only), else a float64 copy."""
        return x if dtype_name(x) == "float64" else self.astype(x, "float64")

    def scalar(self, x: Any) -> float:
        return float(x.item()) if hasattr(x, "item") else float(x)

    def dot(self, a: Any, b: Any) -> float:
        """sum(a * b) over all elements, without the product's temporary where the library can
        (one BLAS dot; torch's is for 1-d tensors of one dtype)."""
        if self.name == "torch":
            if a.dtype != b.dtype or a.is_complex():
                return self.scalar((a * b).sum())
            return self.scalar(sys.modules["torch"].dot(a.reshape(-1), b.reshape(-1)))
        return self.scalar(self.xp.vdot(a, b))

    def raise_to(self, a: Any, floor: Any) -> Any:
        """max(a, floor), in ``a`` itself where it is an array (``floor``: an array of a's
        shape or a number); NumPy scalars (0-d arithmetic gives them) get a new value."""
        if self.name == "torch":
            torch = sys.modules["torch"]
            return a.clamp_(min=floor) if isinstance(floor, (int, float)) else torch.maximum(a, floor, out=a)
        module = np if self.name == "numpy" else sys.modules["cupy"]
        return module.maximum(a, floor, out=a) if isinstance(a, module.ndarray) else module.maximum(a, floor)

    def scaled_distance(self, moved: Any, y: Any, scale: float) -> Any:
        """|moved - y| / scale, computed in ``moved`` (our own array) without a temporary."""
        if self.name == "numpy" and not isinstance(moved, np.ndarray):
            return np.abs(moved - y) / scale
        moved -= y
        if self.name == "torch":
            moved.abs_()
        else:
            (np if self.name == "numpy" else sys.modules["cupy"]).abs(moved, out=moved)
        moved /= scale
        return moved

    def sum_abs(self, scratch: Any) -> float:
        """sum |scratch|, overwriting ``scratch`` with its absolute values (no temporary)."""
        if self.name == "torch":
            return self.scalar(scratch.abs_().sum())
        if self.name == "numpy" and not isinstance(scratch, np.ndarray):
            return float(abs(scratch))  # NumPy scalars (what arithmetic on 0-d arrays gives)
        module = np if self.name == "numpy" else sys.modules["cupy"]
        return self.scalar(module.sum(module.abs(scratch, out=scratch)))


def to_numpy(x: Any) -> np.ndarray:
    """Any backend's array as a host NumPy array (bfloat16 becomes float32). NumPy arrays come
    back as they are, not copied: treat the result as read-only."""
    if _is_torch(x):
        t = x.detach()
        if dtype_name(t) == "bfloat16":
            t = t.float()
        return np.array(t.cpu().numpy(), copy=True)
    if _is_cupy(x):
        return np.array(x.get(), copy=True)
    if is_jax(x):
        host = to_host(x)
        return host.astype(np.float32) if dtype_name(host) == "bfloat16" else host
    return np.asarray(x)


def backend_for(name: str) -> Backend:
    """The ``Backend`` named ``numpy``, ``torch``, ``torch:cuda``, ``cupy`` (``cupy:1`` …) or
    ``jax`` (JAX's default device; ``jax:cpu``, ``jax:gpu:0``); raises ``gk.InvalidArgument``
    saying why when it cannot run here."""
    if not isinstance(name, str):
        raise InvalidArgument(f"backend={name!r} must be one of {', '.join(BACKEND_NAMES)}")
    if not re.fullmatch(BACKEND_PATTERN, name):  # before importing anything: torch:meta, cupy:x
        raise InvalidArgument(f"backend={name!r} is unknown; accepted: {BACKENDS_ACCEPTED}")
    library, _, device = name.partition(":")
    if library == "numpy" and not device:
        return Backend("numpy", "cpu")
    if library == "torch":
        return _torch_backend(name, device or "cpu")
    if library == "cupy":
        return _cupy_backend(name, device or "0")
    if library == "jax":
        return _jax_backend(name, device)
    raise InvalidArgument(f"backend={name!r} is unknown; accepted: {', '.join(BACKEND_NAMES)}")


def _torch_backend(name: str, device: str) -> Backend:
    try:
        import torch
    except ImportError as exc:
        raise InvalidArgument(f"backend={name!r} needs torch, which cannot be imported: {exc}") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidArgument(f"backend={name!r} needs a CUDA device; torch.cuda.is_available() is False")
    index = device.partition(":")[2]
    if index and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise InvalidArgument(f"backend={name!r}: CUDA device {index} does not exist ({count} found)")
    return Backend("torch", torch.device(device))


def _cupy_backend(name: str, device: str) -> Backend:
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # ImportError, or CUDA driver/runtime errors of every kind
        raise InvalidArgument(f"backend={name!r} is unavailable here: {type(exc).__name__}: {exc}") from None
    if not device.isdigit() or int(device) >= count:
        raise InvalidArgument(f"backend={name!r}: CUDA device {device} does not exist ({count} found)")
    return Backend("cupy", int(device))


def _jax_backend(name: str, device: str) -> Backend:
    """JAX's default device, or the one named (``cpu``, ``gpu:1``)."""
    try:
        import jax
    except ImportError as exc:
        raise InvalidArgument(f"backend={name!r} needs JAX, which cannot be imported: {exc}") from None
    if not device:
        return Backend("jax", "default")
    platform, _, index = device.partition(":")
    try:
        found = jax.devices(platform)
    except RuntimeError as exc:
        raise InvalidArgument(f"backend={name!r} is unavailable here: {exc}") from None
    if int(index or 0) >= len(found):
        raise InvalidArgument(f"backend={name!r}: JAX device {device} does not exist ({len(found)} found)")
    return Backend("jax", found[int(index or 0)])


def backend_of(arrays: Sequence[Any], *, requested: str | None = None) -> Backend:
    """The one backend all ``arrays`` share; mixing libraries or devices is an error."""
    if requested is not None and requested not in LIBRARIES:
        raise InvalidArgument(f"backend={requested!r} is unknown; accepted: {', '.join(LIBRARIES)}")
    found = {(backend_name(a), str(_device(a))): a for a in arrays}
    if len(found) > 1:
        kinds = ", ".join(sorted(f"{n} on {d}" for n, d in found))
        raise InvalidArgument(f"inputs mix array libraries or devices ({kinds}); use one")
    if not found:
        if requested not in (None, "numpy"):
            raise InvalidArgument(f"backend={requested!r} needs at least one {requested} array")
        return Backend("numpy", "cpu", array_namespace(np.empty(0)))
    (name, _), sample = next(iter(found.items()))
    if requested is not None and requested != name:
        raise InvalidArgument(f"backend={requested!r} but the inputs are {name} arrays")
    return Backend(name, _device(sample), array_namespace(sample))


def _device(x: Any) -> Any:
    if _is_torch(x):
        return x.device
    if _is_cupy(x):
        return x.device.id
    if is_jax(x):
        return device_label(device_of(x))
    return "cpu"


def same_values(a: Any, b: Any) -> bool:
    """Equal values, NaN equal to NaN (used to detect mutation); compared on the arrays' own
    device, without host copies."""
    if tuple(a.shape) != tuple(b.shape) or dtype_name(a) != dtype_name(b):
        return False
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        # the plain comparison first: the NaN-aware one masks and copies, twice the memory traffic
        if np.array_equal(a, b):
            return True
        return np.issubdtype(a.dtype, np.inexact) and bool(np.array_equal(a, b, equal_nan=True))
    if _is_torch(a) and _is_torch(b) and sys.modules["torch"].equal(a, b):  # one call, no temporaries
        return True
    xp = array_namespace(a, b)
    equal = a == b
    if is_floating(a):
        equal = equal | (xp.isnan(a) & xp.isnan(b))
    return bool(xp.all(equal))


def all_finite(a: Any) -> bool:
    """True when every element is finite, checked on the array's own device."""
    if isinstance(a, np.ndarray):
        return bool(np.isfinite(a).all())
    xp = array_namespace(a)
    return bool(xp.all(xp.isfinite(a)))


def first_difference(a: Any, b: Any) -> tuple[int, ...] | None:
    """Index of the first element where two same-shaped arrays differ (NaN equals NaN)."""
    a_np, b_np = to_numpy(a), to_numpy(b)
    if a_np.shape != b_np.shape:
        return None
    differs = a_np != b_np
    if np.issubdtype(a_np.dtype, np.inexact):
        differs &= ~(np.isnan(a_np) & np.isnan(b_np))
    hits = np.argwhere(differs)
    return tuple(int(i) for i in hits[0]) if len(hits) else None


def _memory_span(x: Any) -> tuple[int, int] | None:
    """[start, end) byte addresses an array may touch, or None if unknown."""
    if _is_torch(x):
        if x.numel() == 0:
            return None
        storage = x.untyped_storage()
        return storage.data_ptr(), storage.data_ptr() + storage.nbytes()
    if _is_cupy(x):
        if x.size == 0:
            return None
        base = x.data.mem
        return base.ptr, base.ptr + base.size
    return None


def shares_memory(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` overlap in memory (a view of the other, or one buffer)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.shares_memory(a, b)) if np.may_share_memory(a, b) else False
    span_a, span_b = _memory_span(a), _memory_span(b)
    if span_a is None or span_b is None or backend_name(a) != backend_name(b):
        return False
    return span_a[0] < span_b[1] and span_b[0] < span_a[1]
