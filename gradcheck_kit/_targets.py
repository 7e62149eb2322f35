"""What the CLI's TARGET arguments name, turned into registered layers.

- ``package.module``: every layer registered while the module (or a submodule) was imported;
- ``package.module:name``: the layer registered as ``name`` once the module is imported;
- ``path/to/file.py`` (``path/to/file.py:name``): the same for a file, imported under its dotted
  name inside its package (the folder above the outermost ``__init__.py`` goes on ``sys.path``);
- no target at all: the layers advertised under the ``gradcheck_kit.layers`` entry point.

Every problem (no such module, an exception while importing, no layer found, an unknown name)
raises ``gk.InvalidArgument`` naming the target and what is accepted.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

from ._ground.importing import dotted_name, import_file
from .errors import InvalidArgument, RegistrationError
from .registry import LayerSpec, load_entry_points, registry

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
