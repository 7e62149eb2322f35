"""Importing the layers of a run: the ``gradcheck_modules`` (dotted names or ``.py`` paths
relative to the ini file) and, when enabled, the modules installed packages advertise under the
entry-point group, in the pytest process (collection) and in its worker process (checking)."""

from __future__ import annotations

import os
import sys
import traceback
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from gradcheck_kit._ground.importing import import_file
from gradcheck_kit._ground.vocabulary import ENTRY_POINT_GROUP

from .settings import Settings


def load_layers(settings: Settings, base: Path) -> list[Any]:
    """The ``LayerSpec`` of every layer registered by the ``gradcheck_modules`` and (when
    enabled) the entry-point modules, sorted by name. A module counts for the layers registered
    while it was imported and for those whose origin is the module or one of its submodules."""
    from gradcheck_kit.registry import load_entry_points, registry

    names: set[str] = set()
    for entry in settings.modules:
        before = set(registry.names())
        module = _import(entry, base)
        found = {s.name for s in registry.from_module(module)} | (set(registry.names()) - before)
        if not found:
            _warn_empty(entry)
        names |= found
    if settings.entry_points:
        before = set(registry.names())
        what = f"entry-point group {ENTRY_POINT_GROUP!r}"
        modules = _guarded(lambda: load_entry_points(ENTRY_POINT_GROUP), what)
        names |= set(registry.names()) - before
        names |= {s.name for m in modules for s in registry.from_module(m)}
    return [registry.get(name) for name in sorted(names)]


def _import(entry: str, base: Path) -> str:
    """Import a ``gradcheck_modules`` entry, a dotted name or a ``.py`` path; its module name."""
    if entry.endswith(".py") or "/" in entry or os.sep in entry:
        return _guarded(lambda: _import_path((base / entry).resolve()), f"gradcheck_modules entry {entry!r}")
    return _guarded(lambda: _import_name(entry, base), f"gradcheck_modules entry {entry!r}")


def _import_path(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return import_file(path)[0]


def _import_name(name: str, base: Path) -> str:
    try:
        import_module(name)
    except ModuleNotFoundError as exc:
        top = name.partition(".")[0]
        local = (base / top).is_dir() or (base / f"{top}.py").is_file()
        if exc.name != top or not local or str(base) in sys.path:
            raise
        sys.path.insert(0, str(base))  # a module beside the ini file, not installed
        import_module(name)
    return name


def _guarded(load: Any, what: str) -> Any:
    try:
        return load()
    except Exception as exc:
        raise pytest.Collector.CollectError(
            f"gradcheck-kit: cannot import {what}:\n{_user_traceback(exc)}"
        ) from exc


def _user_traceback(exc: BaseException) -> str:
    """The traceback of an import error without the plugin's and importlib's own frames."""
    ours = str(Path(__file__).parent)
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith((ours, "<frozen importlib"))
        and "importlib" not in Path(f.filename).parts
    ]
    head = ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    return "".join(head + traceback.format_exception_only(type(exc), exc)).rstrip()


def _warn_empty(entry: str) -> None:
    import warnings

    warnings.warn(
        pytest.PytestConfigWarning(
            f"gradcheck_modules entry {entry!r} registered no layers (gk.register(...) with the global "
            "registry is what makes an item)"
        ),
        stacklevel=2,
    )
