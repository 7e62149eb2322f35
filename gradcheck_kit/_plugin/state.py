"""What the plugin keeps per run, in ``config.stash``: the settings, when the run started, each
backend's availability, the worker process that checks the items, the items collected and the
outcomes that reached this process (the controller under xdist)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from .settings import Settings, has_layers_to_collect, split


@dataclass
class State:
    settings: Settings
    started: float = field(default_factory=time.perf_counter)
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    backends: dict[str, str | None] = field(default_factory=dict)  # name -> why it cannot run
    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (node id, entry JSON)
    registered: set[str] = field(default_factory=set)  # layers the collection added to gk.registry
    engaged: bool | None = None
    has_layers: bool | None = None  # gradcheck_modules or an installed package's layers (asked once)
    gpus: tuple[str, ...] | None = None
    pool: Any = None  # the WorkerPool that checks this process's items (started on first use)
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)  # item node id -> what it checks
    writer: Any = None  # the ReportWriter of --gradcheck-report and --gradcheck-md


KEY = pytest.StashKey[State]()
FIXTURE_RESULTS = pytest.StashKey[list[tuple[Any, Any]]]()  # (result, dtype) the fixture checked


def install(config: pytest.Config, settings: Settings) -> State:
    config.stash[KEY] = State(settings)
    return config.stash[KEY]


def get(config: pytest.Config) -> State:
    return config.stash[KEY]


def settings(config: pytest.Config) -> Settings:
    return config.stash[KEY].settings


def engaged(config: pytest.Config) -> bool:
    """Whether this run uses the plugin: a gradcheck option or ini key, ``gradcheck_modules``,
    or an installed package advertising layers. Otherwise the plugin prints and writes nothing."""
    state = get(config)
    if state.engaged is None:
        state.engaged = state.settings.explicit or has_layers(config)
    return state.engaged


def has_layers(config: pytest.Config) -> bool:
    """Whether the run has layers to collect; the entry points are read once per run (a scan of
    every installed distribution: ~10-20 ms, paid by projects that do not use the plugin too)."""
    state = get(config)
    if state.has_layers is None:
        state.has_layers = has_layers_to_collect(state.settings)
    return state.has_layers


def backend_problem(config: pytest.Config, backend: str) -> str | None:
    """Why ``backend`` cannot run here (None when it can); asked once per run."""
    known = get(config).backends
    if backend not in known:
        from gradcheck_kit._ground.backends import backend_for
        from gradcheck_kit.errors import InvalidArgument

        try:
            backend_for(backend)
            known[backend] = None
        except InvalidArgument as exc:
            known[backend] = str(exc)
    return known[backend]


def database(config: pytest.Config) -> str:
    """The example database: ``$GRADCHECK_DATABASE`` (``none`` turns it off), else
    ``<rootdir>/.hypothesis/gradcheck`` (one file per example: safe for xdist workers)."""
    from gradcheck_kit import profiles

    chosen = os.environ.get(profiles.DATABASE_ENV)
    return chosen if chosen is not None else str(config.rootpath / profiles.DEFAULT_DATABASE)


def gpus(config: pytest.Config) -> tuple[str, ...]:
    """The GPUs to spread over xdist workers: ``--gradcheck-gpus``, else (when a GPU backend is
    asked for) ``$CUDA_VISIBLE_DEVICES``, else every GPU ``nvidia-smi -L`` lists."""
    state = get(config)
    if state.gpus is None:
        state.gpus = state.settings.gpus or (_visible_gpus() if state.settings.gpu_backends else ())
    return state.gpus


def _visible_gpus() -> tuple[str, ...]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return tuple(split(visible))
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(str(i) for i, _ in enumerate(x for x in listing.splitlines() if x.startswith("GPU ")))


def pool(config: pytest.Config) -> Any:
    """This process's worker pool (one worker: items run one at a time here)."""
    current = get(config)
    if current.pool is None:
        from gradcheck_kit._isolation.pool import WorkerPool

        current.pool = WorkerPool(1)
    return current.pool


def close_pool(config: pytest.Config) -> None:
    current = get(config)
    if current.pool is not None:
        current.pool.close()
        current.pool = None


def forget_layers(config: pytest.Config) -> None:
    """Take the layers this run's collection registered out of ``gk.registry`` again, so that a
    second session in the same process (``pytester``) starts from the registry the first found."""
    from gradcheck_kit.registry import registry

    for name in get(config).registered:
        registry.remove(name)
