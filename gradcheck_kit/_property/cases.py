"""What property testing draws for a layer: its registered ``cases`` strategy, cast to the dtypes
asked for (keeping each case's memory layout) and moved to the backend asked for."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter

from .. import strategies as gks
from .._ground.backends import Backend, backend_for, is_floating
from .._ground.importing import import_file
from .._ground.vocabulary import CASE_DTYPES, dtype_problem
from ..errors import InvalidArgument
from ..registry import Case, LayerSpec, cases_backend, registry

ACCEPTED_LAYERS = (
    "a gk.LayerSpec, a registered layer's name, 'package.module:name' or 'path/to/file.py:name' (the "
    "module is imported first) or a class decorated with gk.register"
)


def resolve_layer(layer: Any) -> LayerSpec:
    """A ``LayerSpec`` from a spec, a registered name, ``'module:name'`` or ``'file.py:name'``
    (importing the module registers the layer, as the CLI's targets do), or a class decorated
    with ``gk.register``."""
    if isinstance(layer, LayerSpec):
        return layer
    if isinstance(layer, str):
        return registry.get(layer) if layer in registry or ":" not in layer else _imported(layer)
    spec = getattr(layer, "__gradcheck__", None)
    if isinstance(spec, LayerSpec):
        return spec
    raise InvalidArgument(f"layer={layer!r} must be {ACCEPTED_LAYERS}")


def _imported(target: str) -> LayerSpec:
    """The layer ``'module:name'`` or ``'path/to/file.py:name'`` names, its module imported."""
    where, _, name = target.rpartition(":")
    try:
        if where.endswith(".py") or "/" in where or "\\" in where:
            import_file(Path(where))
        elif all(part.isidentifier() for part in where.split(".")):
            import_module(where)
        else:
            raise InvalidArgument(f"layer={target!r}: {where!r} is not a module name or a .py path")
    except ImportError as exc:
        raise InvalidArgument(f"layer={target!r}: importing {where!r} failed: {exc}") from None
    return registry.get(name)


def replay_target(spec: LayerSpec) -> str:
    """What names ``spec`` in a replay line that works in a fresh interpreter:
    ``'module:name'`` for a layer an importable module registered, else its name (a layer
    registered in ``__main__`` or a notebook, or outside the global registry)."""
    module = sys.modules.get(spec.origin) if spec.origin not in ("", "__main__") else None
    registered = spec.name in registry and registry.get(spec.name) is spec
    if module is None or not registered or ":" in spec.name:
        return spec.name
    return f"{spec.origin}:{spec.name}"


def sample_case(spec: LayerSpec) -> Case | None:
    """One case of the layer: its first fixed case, or one drawn from its strategy (None when
    it has no cases or drawing fails: checking it says why)."""
    if spec.cases is None or isinstance(spec.cases, tuple):
        return spec.cases[0] if spec.cases else None
    quick = settings(
        database=None, max_examples=10, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
    )
    try:
        with with_reporter(lambda text: None):
            return find(spec.cases, lambda case: True, settings=quick)
    except Exception:  # an undrawable strategy
        return None


def native_backend(spec: LayerSpec) -> str | None:
    """The backend the layer runs on by default: ``spec.native_backend``, else that of the
    torch tensors a drawn case holds; None: any (NumPy by default)."""
    found = spec.native_backend
    if found is not None or spec.cases is None or isinstance(spec.cases, tuple):
        return found
    if "torch" not in sys.modules:  # no case can hold a tensor: nothing to draw
        return None
    case = sample_case(spec)
    return cases_backend(case) if isinstance(case, Case) else None


def backend_mismatch(spec: LayerSpec, backend: str) -> str | None:
    """Why ``spec`` cannot run on ``backend`` (a torch-native layer fed NumPy or CuPy arrays),
    or None."""
    native = native_backend(spec)
    if native is None or backend.split(":")[0] == native.split(":")[0]:
        return None
    why = (
        f"registered with backend={spec.backend!r}"
        if spec.backend is not None
        else f"its cases hold {_arrays_of(native)}"
        if spec.native_backend is None or spec.native_backend != native
        else _adapted_from(spec)
    )
    return (
        f"layer {spec.name!r} runs on {native} ({why}), not on backend {backend!r}; accepted: "
        f"--backend {native} (or no --backend: each layer's own)"
    )


def _arrays_of(backend: str) -> str:
    library = backend.split(":")[0]
    return "torch tensors" if library == "torch" else f"{library} arrays"


def _adapted_from(spec: LayerSpec) -> str:
    extras = getattr(spec.forward, "gradcheck_extras", None)
    origin = getattr(extras, "origin", None)  # 'torch.autograd.Function MyConv', 'jax.custom_vjp f'
    kind = origin.rsplit(" ", 1)[0] if isinstance(origin, str) and " " in origin else None
    return f"a {kind}" if kind is not None else f"a {spec.native_backend} layer"


def to_backend(case: Case, backend: str | Backend) -> Case:
    """``case`` with every NumPy array input moved to ``backend`` (same values and dtypes; the
    arrays become contiguous except on NumPy, where the case is returned as it is)."""
    b = backend if isinstance(backend, Backend) else backend_for(backend)
    if b.name == "numpy":
        return case
    inputs = tuple(
        _moved(b, x, case.meta.get("dtype")) if isinstance(x, np.ndarray) else x for x in case.inputs
    )
    return Case(inputs, case.params, meta={**case.meta, "backend": b.label()})


def _moved(b: Backend, x: np.ndarray, dtype: str | None) -> Any:
    moved = b.from_numpy(x)
    # NumPy has no bfloat16: such cases travel as float32 and are cast on the backend
    return b.astype(moved, dtype) if dtype == "bfloat16" and is_floating(x) else moved


def with_dtype(case: Case, dtype: str) -> Case:
    """``case`` with its floating NumPy inputs cast to ``dtype``, keeping the memory layout named
    in ``case.meta["layout"]`` (if any); bfloat16 inputs stay float32 until ``to_backend``."""
    layout = case.meta.get("layout")
    keep = layout if layout in gks.LAYOUTS else "C"
    numpy_dtype = "float32" if dtype == "bfloat16" else dtype
    inputs = tuple(
        gks.with_layout(x.astype(numpy_dtype), keep) if isinstance(x, np.ndarray) and is_floating(x) else x
        for x in case.inputs
    )
    return Case(inputs, case.params, meta={**case.meta, "dtype": dtype})


def layer_cases(
    layer: Any, *, backend: str = "numpy", dtypes: Sequence[str] | None = None
) -> st.SearchStrategy[Case]:
    """The layer's own ``cases`` strategy, cast to one of ``dtypes`` and moved to ``backend``.

    A layer registered with a fixed sequence of cases is sampled from. Casting keeps each
    case's memory layout (``case.meta["layout"]``); the dtype is recorded in ``case.meta``.

    Parameters
    ----------
    layer : LayerSpec, str or class
        A spec, a registered layer's name or a class decorated with ``gk.register``.
    backend : str, default "numpy"
        ``numpy``, ``torch``, ``torch:cuda``, ``cupy`` or ``jax``: where the inputs are moved.
    dtypes : sequence of str, optional
        Floating dtypes (``float64``, ``float32``, ``float16``, and ``bfloat16`` on torch) to
        cast every floating input to, one drawn per case, shrinking towards the first (default:
        the cases' own).

    Returns
    -------
    hypothesis.strategies.SearchStrategy of Case

    Raises
    ------
    InvalidArgument
        For an unknown layer, one registered without cases, an unavailable backend (saying
        why) or ``dtypes`` that are not a non-empty sequence of those names (or name bfloat16
        for a backend without it).

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> from hypothesis import find, settings
    >>> spec = gk.register("tanh", forward=np.tanh, backward=lambda dy, x: (dy * (1 - np.tanh(x) ** 2),),
    ...                    cases=[gk.Case((np.linspace(-1.0, 1.0, 4),))], into=gk.Registry())
    >>> strategy = gk.layer_cases(spec, dtypes=("float32", "float64"))
    >>> find(strategy, lambda case: True, settings=settings(database=None)).inputs[0].dtype
    dtype('float32')
    """
    spec = resolve_layer(layer)
    b = backend_for(backend)
    strategy = _base_cases(spec)
    if dtypes is not None:
        unknown = [d for d in dtypes if d not in CASE_DTYPES] if not isinstance(dtypes, str) else dtypes
        if not dtypes or unknown:
            raise InvalidArgument(f"dtypes={dtypes!r} must be a sequence of {', '.join(CASE_DTYPES)}")
        problems = [p for p in (dtype_problem(b.name, d) for d in dtypes) if p is not None]
        if problems:
            raise InvalidArgument(f"dtypes={tuple(dtypes)!r}: {problems[0]}")
        strategy = st.tuples(strategy, gks.dtypes(floating=tuple(dtypes))).map(lambda pair: with_dtype(*pair))
    return strategy if b.name == "numpy" else strategy.map(lambda case: to_backend(case, b))


def _base_cases(spec: LayerSpec) -> st.SearchStrategy[Case]:
    if spec.cases is None:
        raise InvalidArgument(
            f"layer {spec.name!r} has no cases; register it with cases=<strategy of gk.Case>"
        )
    if isinstance(spec.cases, st.SearchStrategy):
        return spec.cases
    return st.sampled_from(tuple(spec.cases))
