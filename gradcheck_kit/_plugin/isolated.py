"""Gradcheck items checked in a worker process (``--gradcheck-isolation=on``, the default), so
that a layer that crashes its process, calls ``os._exit`` or ``fork``, or hangs past
``--gradcheck-timeout`` fails its own item (``crashed``/``timeout``, naming the layer and its
last stage) and the session goes on; ``off`` checks them in the pytest process.

Each pytest process (each xdist worker) keeps one worker process for the whole session; it
imports the ``gradcheck_modules`` once, as collection did, and finds each item's layer by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradcheck_kit._ground import progress
from gradcheck_kit._isolation.entries import Job, check_entries, check_one
from gradcheck_kit._isolation.worker import IMPORTING

from . import state
from .settings import Settings

_loaded: dict[tuple[Any, ...], dict[str, Any]] = {}


def check_item(
    settings: Settings, base: Path, name: str, backend: str, dtype: str, options: dict[str, Any]
) -> dict[str, Any]:
    """In the worker: the JSON entry of layer ``name`` on ``backend`` in ``dtype``."""
    from gradcheck_kit.report import Entry

    from .layers import load_layers

    key = (settings.modules, settings.entry_points, str(base))
    try:
        if key not in _loaded:
            progress.mark(f"{IMPORTING} {', '.join(settings.modules) or 'the entry points'}")
            _loaded[key] = {spec.name: spec for spec in load_layers(settings, base)}
        spec = _loaded[key][name]
    except Exception as exc:  # importing worked in the pytest process, but not here
        reason = f"layer {name!r} cannot be imported in the worker process: {type(exc).__name__}: {exc}"
        return Entry.errored(name, backend, dtype, reason).to_dict()
    progress.mark(f"checking {name} [{backend}, {dtype}]")
    return check_one(spec, backend, dtype, options).to_dict()


def run_item(item: Any, base: Path) -> dict[str, Any]:
    """In the pytest process: the JSON entry of a ``GradcheckItem`` (its layers imported
    relative to ``base``), checked in this session's worker process (or here, without
    isolation)."""
    settings = state.settings(item.config)
    options = {
        "seed": item.seed,
        "profile": settings.resolved_profile(),
        "max_examples": settings.max_examples,
        "database": state.database(item.config),
        "timeout": settings.timeout,
    }
    if not settings.isolation:
        return dict(check_one(item.spec, item.backend, item.dtype, options).to_dict())
    args = (settings, base, item.spec.name, item.backend, item.dtype, options)
    job = Job(item.spec.name, item.backend, item.dtype, args)
    ((_, entry),) = check_entries([job], check_item, pool=state.pool(item.config), timeout=settings.timeout)
    return dict(entry.to_dict())
