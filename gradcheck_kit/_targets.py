"""What the CLI's TARGET arguments name, turned into registered layers.

- ``package.module``: every layer registered while the module (or a submodule) was imported;
- ``package.module:name``: the layer registered as ``name`` once the module is imported;
- ``path/to/file.py`` (``path/to/file.py:name``): the same for a file, imported under its dotted
  name inside its package (the folder above the outermost ``__init__.py`` goes on ``sys.path``);
- no target at all: the layers advertised under the ``gradcheck_kit.layers`` entry point.

Every problem (no such module, an exception while importing, no layer found, an unknown name)
raises ``gk.InvalidArgument`` naming the target and what is accepted.

The CLI imports layers only in its worker processes: ``layer_names``, ``describe_layers`` and
``check_entry`` are the tasks it sends them (each resolves the targets once per process), and
what they return is plain data (names, JSON entries), never a layer.
"""

from __future__ import annotations

import inspect
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

from ._ground import progress
from ._ground.importing import dotted_name, import_file
from ._isolation.entries import check_one
from ._isolation.worker import IMPORTING
from ._property.cases import backend_mismatch, native_backend, sample_case
from .errors import InvalidArgument, RegistrationError
from .registry import LayerSpec, load_entry_points, registry
from .report import Entry

ACCEPTED = "package.module, package.module:layer_name, path/to/file.py or path/to/file.py:layer_name"


def resolve(targets: Sequence[str]) -> list[LayerSpec]:
    """The layers ``targets`` name, each once, sorted by name."""
    _cwd_on_path()
    specs = [spec for target in targets for spec in _layers_of(target)] if targets else _entry_point_layers()
    return sorted({spec.name: spec for spec in specs}.values(), key=lambda spec: spec.name)


def _layers_of(target: str) -> list[LayerSpec]:
    where, _, name = _split(target)
    module = import_path(where) if _is_path(where) else import_dotted(where, target)
    if name:
        return [registry.get(name)]
    found = registry.from_module(module)
    if not found:
        known = ", ".join(registry.names()) or "none"
        raise InvalidArgument(
            f"target {target!r}: importing {module!r} registered no layer (gk.register was not called "
            f"while importing it); registered layers: {known}"
        )
    return found


def _split(target: str) -> tuple[str, str, str]:
    if not isinstance(target, str) or not target.strip():
        raise InvalidArgument(f"target={target!r} is empty; accepted: {ACCEPTED}")
    where, sep, name = target.rpartition(":")
    if not sep or "/" in name or "\\" in name or not where:  # no layer name (or a drive letter)
        return target, "", ""
    return where, sep, name


def _is_path(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where or Path(where).is_file()


def _cwd_on_path() -> None:
    """Like ``python -m``: modules in the working directory can be named (the console script
    does not put it on ``sys.path`` itself)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def import_dotted(module: str, target: str) -> str:
    """Import ``module`` by its dotted name; returns the name."""
    if not all(part.isidentifier() for part in module.split(".")):
        raise InvalidArgument(
            f"target {target!r}: {module!r} is not a module name or a .py path; accepted: {ACCEPTED}"
        )
    _import(module, target)
    return module


def import_path(where: str) -> str:
    """Import the file ``where`` under its dotted name within its package; returns the name."""
    path = Path(where).resolve()
    if not path.is_file():
        raise InvalidArgument(f"target {where!r}: no such file; accepted: {ACCEPTED}")
    if path.suffix != ".py":
        raise InvalidArgument(f"target {where!r} is not a .py file; accepted: {ACCEPTED}")
    module, _ = dotted_name(path)
    if not all(part.isidentifier() for part in module.split(".")):
        raise InvalidArgument(
            f"target {where!r}: {module!r} is not an importable module name; rename the file"
        )
    _import(module, where, lambda: import_file(path))
    return module


def _import(module: str, target: str, load: Callable[[], object] | None = None) -> object:
    try:
        return load() if load is not None else import_module(module)
    except RegistrationError as exc:
        raise InvalidArgument(f"target {target!r}: a layer could not be registered: {exc}") from None
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise InvalidArgument(
                f"target {target!r}: no module named {exc.name!r}; accepted: {ACCEPTED}"
            ) from None
        raise InvalidArgument(f"target {target!r}: importing {module!r} failed: {_tail(exc)}") from None
    except ImportError as exc:
        if "which is another file" in str(exc):
            raise InvalidArgument(
                f"target {target!r}: the name {module!r} is already taken by another module; "
                "rename the file or name it as a module"
            ) from None
        raise InvalidArgument(f"target {target!r}: importing {module!r} failed: {_tail(exc)}") from None
    except BaseException as exc:  # SyntaxError, SystemExit, anything the module raises
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise InvalidArgument(f"target {target!r}: importing {module!r} failed: {_tail(exc)}") from None


def _tail(exc: BaseException, lines: int = 3) -> str:
    """``ValueError: bad`` plus the innermost frames, in a few lines."""
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(frames).strip().splitlines()
    return "\n".join(text[-lines:]) if len(text) > 1 else text[0]


def _entry_point_layers() -> list[LayerSpec]:
    modules = load_entry_points()
    specs = [spec for module in modules for spec in registry.from_module(module)]
    if not specs:
        raise InvalidArgument(
            "no target given and no layer advertised under the 'gradcheck_kit.layers' entry point; "
            f"accepted targets: {ACCEPTED}"
        )
    return specs


# -- the tasks the CLI sends its workers --------------------------------------------------------

_resolved: dict[tuple[str, ...], dict[str, LayerSpec]] = {}


def _specs(targets: Sequence[str]) -> dict[str, LayerSpec]:
    """The layers ``targets`` name, imported once per process."""
    key = tuple(targets)
    if key not in _resolved:
        progress.mark(f"{IMPORTING} {' '.join(targets) or 'the entry points'}")
        _resolved[key] = {spec.name: spec for spec in resolve(targets)}
    return _resolved[key]


def layer_names(targets: list[str]) -> dict[str, Any]:
    """``{"names": [...], "backends": {name: native backend or None}}``, sorted, or
    ``{"error": message}`` when a target cannot be used. A layer's native backend is where it is
    checked when no ``--backend`` is given (``torch`` for a ``torch.autograd.Function``)."""
    try:
        specs = _specs(targets)
    except InvalidArgument as exc:
        return {"error": str(exc)}
    return {"names": list(specs), "backends": {name: native_backend(spec) for name, spec in specs.items()}}


def describe_layers(targets: list[str]) -> dict[str, Any]:
    """``{"layers": [describe_layer(...), ...]}`` or ``{"error": message}``."""
    try:
        return {"layers": [describe_layer(spec) for spec in _specs(targets).values()]}
    except InvalidArgument as exc:
        return {"error": str(exc)}


def check_entry(
    targets: list[str], name: str, backend: str, dtype: str, options: dict[str, Any]
) -> dict[str, Any]:
    """The JSON entry of ``name`` (one of the layers ``targets`` name) on ``backend`` in ``dtype``."""
    try:
        spec = _specs(targets)[name]
    except (InvalidArgument, KeyError) as exc:  # the targets changed between two imports
        return Entry.errored(name, backend, dtype, f"layer {name!r} cannot be imported here: {exc}").to_dict()
    mismatch = backend_mismatch(spec, backend)
    if mismatch is not None:  # a torch layer fed NumPy arrays would fail for the wrong reason
        return Entry.skipped(name, backend, dtype, mismatch).to_dict()
    progress.mark(f"checking {name} [{backend}, {dtype}]")
    return check_one(spec, backend, dtype, options).to_dict()


# -- what `list` shows --------------------------------------------------------------------------


def describe_layer(spec: LayerSpec) -> dict[str, Any]:
    """Name, inputs, params with their defaults, cases, reference and origin of a layer.

    Inputs are forward's positional parameters that its cases fill with ``Case.inputs``; the
    ones its cases give in ``Case.params`` (CS231n's ``conv_param``) are params."""
    given = _case_params(spec)
    return {
        "name": spec.name,
        "inputs": [name for name in spec.input_names if name not in given],
        "params": _params(spec, given),
        "cases": _cases_kind(spec.cases),
        "reference": spec.reference is not None,
        "origin": spec.origin,
        "description": spec.description,
    }


def _params(spec: LayerSpec, given: set[str]) -> dict[str, str]:
    """Forward's keyword parameters (not inputs) with their defaults' repr, ``required`` if none."""
    try:
        parameters = list(inspect.signature(spec.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    inputs = set(spec.input_names) - given
    keyword = [p for p in parameters if p.kind is p.KEYWORD_ONLY or p.name not in inputs]
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        p.name: "required" if p.default is p.empty else repr(p.default)
        for p in keyword
        if p.kind not in kinds
    }


def _case_params(spec: LayerSpec) -> set[str]:
    """The params one of the layer's cases gives (its first fixed case, or one drawn from its
    strategy); none when it has no cases or drawing fails (``check`` reports that)."""
    case = sample_case(spec)
    if case is None:
        return set()
    inputs = set(spec.input_names[: len(case.inputs)])
    return {name for name in getattr(case, "params", {}) if name not in inputs}


def _cases_kind(cases: Any) -> str:
    if cases is None:
        return "none"
    return "strategy" if hasattr(cases, "example") else f"{len(cases)} fixed"
