"""The layer registry: what the property tests, the pytest plugin and the CLI iterate over.

``register`` only records a layer; the ``Registry`` validates it at once (callables, signatures,
cases) and raises ``RegistrationError`` naming the layer and showing the offending signature.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from ._ground.vocabulary import ENTRY_POINT_GROUP
from .errors import InvalidArgument, RegistrationError


@dataclass(frozen=True)
class Case:
    """One configuration of a layer: positional ``inputs`` and static keyword ``params``."""

    inputs: tuple[Any, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "params", dict(self.params or {}))
        object.__setattr__(self, "meta", dict(self.meta or {}))

    def describe(self, names: Sequence[str] = ()) -> str:
        """``x float64[1,1,3,4], w [1,1,2,2], stride=2, padding=1``."""
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
    """A registered layer: a forward/backward pair and how to draw valid inputs for it."""

    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    cases: Any = None
    reference: Callable[..., Any] | None = None
    wrt: tuple[int | str, ...] | None = None
    origin: str = ""
    description: str = ""

    @property
    def input_names(self) -> tuple[str, ...]:
        return positional_names(self.forward)


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []


def positional_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Names of a callable's positional parameters (its inputs, by our convention)."""
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
    """Raise RegistrationError unless backward takes grad_output plus forward's inputs."""
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
    """Layers by name, in registration order; iteration is sorted by name (deterministic)."""

    def __init__(self) -> None:
        self._layers: dict[str, LayerSpec] = {}

    def add(self, spec: LayerSpec, *, replace: bool = False) -> LayerSpec:
        if not isinstance(spec.name, str) or not spec.name.strip():
            raise RegistrationError("the name must be a non-empty string", layer=str(spec.name))
        validate_pair(spec.name, spec.forward, spec.backward)
        if spec.reference is not None and not callable(spec.reference):
            raise RegistrationError(f"reference={spec.reference!r} is not callable", layer=spec.name)
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
        try:
            return self._layers[name]
        except KeyError:
            known = ", ".join(sorted(self._layers)) or "none registered"
            raise InvalidArgument(f"layer {name!r} is not registered; known: {known}") from None

    def remove(self, name: str) -> None:
        self._layers.pop(name, None)

    def from_module(self, module: str) -> list[LayerSpec]:
        """Layers registered while ``module`` (or a submodule of it) was being imported."""
        return [s for s in self if s.origin == module or s.origin.startswith(module + ".")]

    def names(self) -> list[str]:
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
    replace: bool = False,
    into: Registry | None = None,
) -> Any:
    """Register a layer; without ``forward``/``backward`` it decorates a class whose
    staticmethods ``forward`` and ``backward`` (and optional ``reference``) are the layer."""
    target = into if into is not None else registry
    origin = _caller_module(2)
    options = dict(cases=cases, wrt=tuple(wrt) if wrt is not None else None)

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
    """Import every module advertised under the entry-point ``group``; returns their names."""
    loaded = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        module = ep.value.split(":")[0]
        import_module(module)
        loaded.append(module)
    return loaded
