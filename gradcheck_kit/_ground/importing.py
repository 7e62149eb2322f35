"""Importing a layer module named by its file path, the way pytest's prepend mode does: under
its dotted name inside its package (the folder above the outermost ``__init__.py`` goes on
``sys.path``), and only if that name really is that file."""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType


def dotted_name(path: Path) -> tuple[str, Path]:
    """(``package.module``, the folder its top package lies in) for a ``.py`` file."""
    parts, root = [path.stem], path.parent
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts), root


def import_file(path: Path) -> tuple[str, ModuleType]:
    """Import the file ``path`` under its dotted name; ImportError if that name is another file."""
    path = path.resolve()
    name, root = dotted_name(path)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = import_module(name)
    found = getattr(module, "__file__", None)
    if found is None or Path(found).resolve() != path:
        raise ImportError(f"{path} imports as module {name!r}, which is another file: {found}")
    return name, module
