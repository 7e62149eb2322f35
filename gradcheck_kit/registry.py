"""The layer registry: what the property tests, the pytest plugin and the CLI iterate over.

``register`` only records a layer; the ``Registry`` validates it at once (callables, signatures,
cases) and raises ``RegistrationError`` naming the layer and showing the offending signature.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from ._ground.vocabulary import BACKEND_PATTERN, BACKENDS_ACCEPTED, ENTRY_POINT_GROUP
from .errors import InvalidArgument, RegistrationError

# A forward that runs on one backend only says so in this attribute (``"torch"``); the adapters
# mark theirs through the Extras they attach (``_adapters.extras.EXTRAS_ATTRIBUTE``, which sits
# above the registry), whose ``native_backend`` names it.
NATIVE_BACKEND_ATTRIBUTE = "gradcheck_backend"
EXTRAS_ATTRIBUTE = "gradcheck_extras"


@dataclass(frozen=True)
class Case:
    """One configuration of a layer: positional ``inputs`` and static keyword ``params``.

    What a layer's ``cases`` strategy draws, and what ``gk.check_case`` checks.

    Attributes
    ----------
    inputs : tuple
        The positional inputs (arrays, labels, ...); any sequence given is made a tuple.
    params : dict
        Static keyword arguments given to forward and backward (stride, padding, ...).
    meta : dict
        What was drawn to build it (``gk.strategies.cases`` keeps the keywords and the
        ``seed``), its dtype, layout and backend; left out of comparisons and ``repr``.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> case = gk.Case([np.zeros((1, 1, 3, 4)), np.zeros((1, 1, 2, 2))], {"stride": 2})
    >>> case.inputs[1].shape, case.params
    ((1, 1, 2, 2), {'stride': 2})
    """

    inputs: tuple[Any, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "params", dict(self.params or {}))
        object.__setattr__(self, "meta", dict(self.meta or {}))

    def describe(self, names: Sequence[str] = ()) -> str:
        """The case in one line: ``x float64[1,1,3,4], w [1,1,2,2], stride=2, padding=1``.

        Parameters
        ----------
        names : sequence of str, default ()
            The inputs' names, in order (default for each missing one: ``input0``, ``input1``, ...).

        Returns
        -------
        str
            Each input's name, dtype (where it differs from the previous one's) and shape, then
            the params as ``key=value``.
        """
        from ._ground.backends import dtype_name, is_array

        parts, last_dtype = [], None
        for i, value in enumerate(self.inputs):
            name = names[i] if i < len(names) else f"input{i}"
            parts.append(f"{name} {_describe_value(value, last_dtype)}")
            last_dtype = dtype_name(value) if is_array(value) else last_dtype
        parts += [f"{key}={value!r}" for key, value in self.params.items()]
        return ", ".join(parts)


def _describe_value(value: Any, last_dtype: str | None) -> str:
    from ._ground.backends import dtype_name, is_array

    if not is_array(value):
        return repr(value)
    dtype = dtype_name(value)
    shape = ",".join(str(int(n)) for n in value.shape)
    return f"[{shape}]" if dtype == last_dtype else f"{dtype}[{shape}]"


@dataclass(frozen=True)
class LayerSpec:
    """A registered layer: a forward/backward pair and how to draw valid inputs for it.

    Attributes
    ----------
    name : str
        The layer's name in the registry and in reports.
    forward : callable
        ``forward(*inputs, **params)``, as for ``gk.check``.
    backward : callable
        ``backward(grad_output, *inputs, **params)``, as for ``gk.check``.
    cases : hypothesis strategy of Case, tuple of Case, or None
        How to draw valid configurations (None: the layer cannot be property-tested).
    reference : callable or None
        A torch function of the same math (``gk.check``'s ``reference``).
    wrt : tuple of int or str, or None
        The inputs to differentiate (None: every floating input).
    origin : str
        The module that registered it (``import`` it to register the layer again elsewhere).
    description : str
        One line about the layer (a decorated class's first docstring line by default).
    backend : str or None
        The backend the layer runs on natively (``"torch"`` for a ``torch.autograd.Function``),
        None when it takes any (NumPy arrays by default); see ``native_backend``.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> spec = gk.LayerSpec("tanh", np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),))
    >>> gk.Registry().add(spec).name
    'tanh'
    """

    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    cases: Any = None
    reference: Callable[..., Any] | None = None
    wrt: tuple[int | str, ...] | None = None
    origin: str = ""
    description: str = ""
    backend: str | None = None

    @property
    def native_backend(self) -> str | None:
        """The backend the layer runs on by default, when it can tell.

        ``backend`` when given; else ``"torch"`` for a forward that says so (an adapted
        ``torch.autograd.Function``), or for fixed cases that hold torch tensors
        (``"torch:cuda"`` on a GPU). A cases strategy is not drawn from here.

        Returns
        -------
        str or None
            None: the layer takes whatever backend it is given.

        Examples
        --------
        >>> import numpy as np, gradcheck_kit as gk
        >>> gk.LayerSpec("tanh", np.tanh, lambda dy, x: (dy,)).native_backend is None
        True
        >>> gk.LayerSpec("tanh", np.tanh, lambda dy, x: (dy,), backend="torch").native_backend
        'torch'
        """
        if self.backend is not None:
            return self.backend
        marked = getattr(self.forward, NATIVE_BACKEND_ATTRIBUTE, None)
        marked = marked or getattr(getattr(self.forward, EXTRAS_ATTRIBUTE, None), "native_backend", None)
        cases = self.cases if isinstance(self.cases, tuple) else ()
        held = cases_backend(cases[0]) if cases and isinstance(cases[0], Case) else None
        if isinstance(marked, str):  # a torch Function whose cases are on a GPU: torch:cuda
            return held if held is not None and held.startswith(marked) else marked
        return held

    @property
    def input_names(self) -> tuple[str, ...]:
        """The names of forward's positional parameters: the layer's inputs.

        Where forward has no inspectable signature (a NumPy ufunc before NumPy 2.3, a builtin),
        backward's parameters after grad_output.

        Returns
        -------
        tuple of str
            Empty when neither has an inspectable signature.
        """
        return positional_names(self.forward) or positional_names(self.backward)[1:]


def cases_backend(case: Case) -> str | None:
    """``"torch"`` (``"torch:cuda"``) when a case's inputs are torch tensors, else None.

    Parameters
    ----------
    case : Case
        One case of a layer.

    Returns
    -------
    str or None
        The torch backend its first tensor input asks for; None when it holds none.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> from gradcheck_kit.registry import cases_backend
    >>> cases_backend(gk.Case((np.zeros(3),))) is None
    True
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    tensor = next((x for x in case.inputs if isinstance(x, torch.Tensor)), None)
    if tensor is None:
        return None
    return "torch:cuda" if tensor.is_cuda else "torch"


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        return list(_signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []


@functools.lru_cache(maxsize=512)
def _cached_signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``inspect.signature``, remembered per callable: every check asks for its layer's (0.1 ms)."""
    try:
        return _cached_signature(fn)
    except TypeError as exc:  # unhashable callables: ask each time
        if "unhashable" not in str(exc):
            raise
        return inspect.signature(fn)


def positional_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Names of a callable's positional parameters (its inputs, by our convention).

    Parameters
    ----------
    fn : callable
        A forward, backward or any other callable.

    Returns
    -------
    tuple of str
        The positional-only and positional-or-keyword parameters, in order; empty when ``fn``
        has no inspectable signature.

    Examples
    --------
    >>> from gradcheck_kit.registry import positional_names
    >>> positional_names(lambda x, w, b=None, *args, stride=1: x)
    ('x', 'w', 'b')
    """
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in _parameters(fn) if p.kind in kinds)


def _arity(fn: Callable[..., Any]) -> tuple[int, float]:
    """(fewest, most) positional arguments ``fn`` accepts; most is inf with ``*args``."""
    params = _parameters(fn)
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p for p in params if p.kind in kinds]
    required = sum(1 for p in positional if p.default is p.empty)
    star = any(p.kind is p.VAR_POSITIONAL for p in params)
    return required, (float("inf") if star else len(positional))


def validate_pair(name: str, forward: Any, backward: Any) -> None:
    """Raise RegistrationError unless backward takes grad_output plus forward's inputs.

    Callables without an inspectable signature (builtins, ufuncs) are trusted.

    Parameters
    ----------
    name : str
        The layer's name, for the error message.
    forward : callable
        The layer's forward.
    backward : callable
        The layer's backward.

    Raises
    ------
    RegistrationError
        When either is not callable, or backward cannot take one more positional argument
        than forward (both signatures are shown).

    Examples
    --------
    >>> from gradcheck_kit.registry import validate_pair
    >>> validate_pair("affine", lambda x, w: x @ w, lambda dy, x, w: (dy @ w.T, x.T @ dy))
    >>> validate_pair("affine", lambda x, w: x @ w, lambda dy, x: dy)
    Traceback (most recent call last):
    ...
    gradcheck_kit.errors.RegistrationError: layer 'affine': ... forward(x, w) vs backward(dy, x)
    """
    for role, fn in (("forward", forward), ("backward", backward)):
        if not callable(fn):
            raise RegistrationError(f"{role}={fn!r} is not callable", layer=name, obj=fn)
    if not _parameters(forward) or not _parameters(backward):
        return  # builtins and C callables have no inspectable signature: trust them
    f_min, f_max = _arity(forward)
    b_min, b_max = _arity(backward)
    if b_max < 1 or b_min > f_max + 1 or b_max < f_min + 1:
        raise RegistrationError(
            "backward must take grad_output followed by forward's inputs: "
            f"forward{inspect.signature(forward)} vs backward{inspect.signature(backward)}",
            layer=name,
            obj=backward,
        )


def _validate_cases(name: str, cases: Any) -> Any:
    if cases is None or callable(getattr(cases, "example", None)):
        return cases
    if isinstance(cases, Case):
        return (cases,)
    if isinstance(cases, Sequence) and all(isinstance(c, Case) for c in cases):
        return tuple(cases)
    raise RegistrationError(
        f"cases={cases!r} must be a hypothesis strategy of gk.Case, a sequence of gk.Case or None",
        layer=name,
        obj=cases,
    )


class Registry:
    """Layers by name; iteration is sorted by name (deterministic).

    ``gk.registry`` is the global one that ``gk.register`` adds to and the pytest plugin, the
    CLI and ``gk.property_check("name")`` read. ``len``, ``in`` and ``for`` work as expected.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> layers = gk.Registry()
    >>> _ = layers.add(gk.LayerSpec("tanh", np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),)))
    >>> layers.names(), "tanh" in layers, len(layers)
    (['tanh'], True, 1)
    """

    def __init__(self) -> None:
        self._layers: dict[str, LayerSpec] = {}

    def add(self, spec: LayerSpec, *, replace: bool = False) -> LayerSpec:
        """Validate ``spec`` and register it under ``spec.name``.

        Registering the same forward and backward again (a module imported twice) is allowed.

        Parameters
        ----------
        spec : LayerSpec
            The layer to add.
        replace : bool, default False
            Replace a different layer registered under the same name instead of refusing.

        Returns
        -------
        LayerSpec
            The spec as stored: ``cases`` given as one ``Case`` or a sequence become a tuple.

        Raises
        ------
        RegistrationError
            For an empty name, a forward/backward pair ``validate_pair`` refuses, a reference
            that is not callable, an unknown ``backend``, ``cases`` of another kind, or a name
            already taken by another definition (without ``replace=True``).
        """
        if not isinstance(spec.name, str) or not spec.name.strip():
            raise RegistrationError("the name must be a non-empty string", layer=str(spec.name))
        validate_pair(spec.name, spec.forward, spec.backward)
        if spec.reference is not None and not callable(spec.reference):
            raise RegistrationError(f"reference={spec.reference!r} is not callable", layer=spec.name)
        if spec.backend is not None and not re.fullmatch(BACKEND_PATTERN, str(spec.backend)):
            raise RegistrationError(
                f"backend={spec.backend!r} is unknown; accepted: {BACKENDS_ACCEPTED} or None", layer=spec.name
            )
        spec = _with_cases(spec, _validate_cases(spec.name, spec.cases))
        old = self._layers.get(spec.name)
        if old is not None and not replace and not _same_definition(old, spec):
            raise RegistrationError(
                f"already registered from {old.origin or 'elsewhere'}; pass replace=True "
                "to replace it or choose another name",
                layer=spec.name,
            )
        self._layers[spec.name] = spec
        return spec

    def get(self, name: str) -> LayerSpec:
        """The layer registered under ``name``.

        Parameters
        ----------
        name : str
            A registered layer's name.

        Returns
        -------
        LayerSpec
            The registered layer.

        Raises
        ------
        InvalidArgument
            When no layer has that name; the message lists the registered ones.
        """
        try:
            return self._layers[name]
        except KeyError:
            known = ", ".join(sorted(self._layers)) or "none registered"
            raise InvalidArgument(f"layer {name!r} is not registered; known: {known}") from None

    def remove(self, name: str) -> None:
        """Unregister the layer called ``name``; nothing happens when there is none.

        Parameters
        ----------
        name : str
            The layer's name.
        """
        self._layers.pop(name, None)

    def from_module(self, module: str) -> list[LayerSpec]:
        """Layers registered while ``module`` (or a submodule of it) was being imported.

        Parameters
        ----------
        module : str
            A dotted module name, such as ``reference_layers``.

        Returns
        -------
        list of LayerSpec
            Sorted by name.
        """
        return [s for s in self if s.origin == module or s.origin.startswith(module + ".")]

    def names(self) -> list[str]:
        """The registered layers' names.

        Returns
        -------
        list of str
            Sorted.
        """
        return sorted(self._layers)

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter([self._layers[n] for n in sorted(self._layers)])

    def __len__(self) -> int:
        return len(self._layers)

    def __contains__(self, name: object) -> bool:
        return name in self._layers


def _with_cases(spec: LayerSpec, cases: Any) -> LayerSpec:
    return spec if cases is spec.cases else LayerSpec(**{**spec.__dict__, "cases": cases})


def _same_definition(a: LayerSpec, b: LayerSpec) -> bool:
    """Re-importing a module (pytest, reload) registers the same functions again: allow it."""

    def key(fn: Any) -> tuple[str, str]:
        return getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn))

    return key(a.forward) == key(b.forward) and key(a.backward) == key(b.backward)


registry = Registry()


def _caller_module(depth: int) -> str:
    frame = sys._getframe(depth)
    return str(frame.f_globals.get("__name__", ""))


def register(
    name: str,
    forward: Callable[..., Any] | None = None,
    backward: Callable[..., Any] | None = None,
    *,
    cases: Any = None,
    reference: Callable[..., Any] | None = None,
    wrt: Sequence[int | str] | None = None,
    description: str = "",
    backend: str | None = None,
    replace: bool = False,
    into: Registry | None = None,
) -> Any:
    """Register a layer, or return a class decorator that registers one.

    Without ``forward`` and ``backward`` it returns a decorator for a class whose staticmethods
    ``forward`` and ``backward`` (and optional ``reference``) are the layer; the class gets the
    spec as ``__gradcheck__`` and can be given to ``gk.property_check`` itself.

    Parameters
    ----------
    name : str
        The layer's name in the registry and in reports.
    forward : callable, optional
        ``forward(*inputs, **params)``, as for ``gk.check``.
    backward : callable, optional
        ``backward(grad_output, *inputs, **params)``, as for ``gk.check``.
    cases : hypothesis strategy of Case, Case or sequence of Case, optional
        How to draw valid configurations (see ``gk.strategies.cases``); needed for property
        testing.
    reference : callable, optional
        A torch function of the same math (default for a class: its ``reference``).
    wrt : sequence of int or str, optional
        The inputs to differentiate (default: every floating input).
    description : str, default ""
        One line about the layer (default for a class: its docstring's first line).
    backend : str, optional
        The backend the layer runs on natively (``"torch"``, ``"torch:cuda"``); the CLI and the
        plugin check it there when no backend is asked for, and skip it, saying why, on the
        others. Default: ``"torch"`` for an adapted ``torch.autograd.Function`` or cases that
        hold torch tensors, else any backend (NumPy by default).
    replace : bool, default False
        Replace another layer registered under ``name`` instead of refusing.
    into : Registry, optional
        The registry to add to (default: the global ``gk.registry``).

    Returns
    -------
    LayerSpec or callable
        The registered spec; without forward and backward, the class decorator (which returns
        the class unchanged but for ``__gradcheck__``).

    Raises
    ------
    RegistrationError
        When ``Registry.add`` refuses the layer, or the decorated class lacks a callable
        ``forward`` or ``backward``.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> layers = gk.Registry()
    >>> @gk.register("tanh", cases=[gk.Case((np.linspace(-1.0, 1.0, 5),))], into=layers)
    ... class Tanh:
    ...     forward = staticmethod(lambda x: np.tanh(x))
    ...     backward = staticmethod(lambda dy, x: (dy * (1 - np.tanh(x) ** 2),))
    >>> layers.get("tanh") is Tanh.__gradcheck__, Tanh.__gradcheck__.input_names
    (True, ('x',))
    """
    target = into if into is not None else registry
    origin = _caller_module(2)
    options = dict(cases=cases, wrt=tuple(wrt) if wrt is not None else None, backend=backend)

    def build(fwd: Any, bwd: Any, ref: Any, doc: str) -> LayerSpec:
        spec = LayerSpec(name, fwd, bwd, reference=ref, origin=origin, description=doc, **options)
        return target.add(spec, replace=replace)

    if forward is not None or backward is not None:
        return build(forward, backward, reference, description)

    def decorate(cls: Any) -> Any:
        missing = [m for m in ("forward", "backward") if not callable(getattr(cls, m, None))]
        if missing:
            raise RegistrationError(
                f"{getattr(cls, '__name__', cls)!r} needs callable {' and '.join(missing)}",
                layer=name,
                obj=cls,
            )
        ref = reference if reference is not None else getattr(cls, "reference", None)
        doc = description or (inspect.getdoc(cls) or "").split("\n")[0]
        cls.__gradcheck__ = build(cls.forward, cls.backward, ref, doc)
        return cls

    return decorate


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Import every module advertised under the entry-point ``group``.

    Parameters
    ----------
    group : str, default "gradcheck_kit.layers"
        The entry-point group; a package advertises its layers' module there.

    Returns
    -------
    list of str
        The imported modules' names, in the order of the entry points' names.

    Examples
    --------
    >>> import gradcheck_kit as gk
    >>> gk.load_entry_points("gradcheck_kit.no_such_group")
    []
    """
    from importlib.metadata import entry_points  # here: ~25 ms that `import gradcheck_kit` need not pay

    loaded = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        module = ep.value.split(":")[0]
        import_module(module)
        loaded.append(module)
    return loaded
