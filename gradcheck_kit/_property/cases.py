"""What property testing draws for a layer: its registered ``cases`` strategy, cast to the dtypes
asked for (keeping each case's memory layout) and moved to the backend asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .. import strategies as gks
from .._ground.backends import Backend, backend_for, is_floating
from .._ground.vocabulary import NUMPY_FLOATS
from ..errors import InvalidArgument
from ..registry import Case, LayerSpec, registry


def resolve_layer(layer: Any) -> LayerSpec:
    """A ``LayerSpec`` from a spec, a registered name, or a class decorated with ``gk.register``."""
    if isinstance(layer, LayerSpec):
        return layer
    if isinstance(layer, str):
        return registry.get(layer)
    spec = getattr(layer, "__gradcheck__", None)
    if isinstance(spec, LayerSpec):
        return spec
    raise InvalidArgument(
        f"layer={layer!r} must be a gk.LayerSpec, a registered layer's name or a class decorated "
        "with gk.register"
    )


def to_backend(case: Case, backend: str | Backend) -> Case:
    """``case`` with every NumPy array input moved to ``backend`` (same values and dtypes; the
    arrays become contiguous except on NumPy, where the case is returned as it is)."""
    b = backend if isinstance(backend, Backend) else backend_for(backend)
    if b.name == "numpy":
        return case
    inputs = tuple(b.from_numpy(x) if isinstance(x, np.ndarray) else x for x in case.inputs)
    return Case(inputs, case.params, meta={**case.meta, "backend": b.label()})


def with_dtype(case: Case, dtype: str) -> Case:
    """``case`` with its floating NumPy inputs cast to ``dtype``, keeping the memory layout named
    in ``case.meta["layout"]`` (if any)."""
    layout = case.meta.get("layout")
    keep = layout if layout in gks.LAYOUTS else "C"
    inputs = tuple(
        gks.with_layout(x.astype(dtype), keep) if isinstance(x, np.ndarray) and is_floating(x) else x
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
        Floating dtypes (``float64``, ``float32``, ``float16``) to cast every floating input
        to, one drawn per case, shrinking towards the first (default: the cases' own).

    Returns
    -------
    hypothesis.strategies.SearchStrategy of Case

    Raises
    ------
    InvalidArgument
        For an unknown layer, one registered without cases, an unavailable backend (saying
        why) or ``dtypes`` that are not a non-empty sequence of those names.

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
        unknown = [d for d in dtypes if d not in NUMPY_FLOATS] if not isinstance(dtypes, str) else dtypes
        if not dtypes or unknown:
            raise InvalidArgument(f"dtypes={dtypes!r} must be a sequence of {', '.join(NUMPY_FLOATS)}")
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
